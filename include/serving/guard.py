"""What every request to the serving service passes before any route sees it: the listener, the bearer token,
the rate limit and the body size limit, in that order (an ASGI middleware, so nothing is parsed first).

- With a metrics port, ``/metrics`` is answered only there and nothing else is: 404 otherwise.
- ``/predict`` and ``/metrics`` need ``Authorization: Bearer <token>``, a token of the token file: 401 (with
  ``WWW-Authenticate: Bearer``) when the header is missing or is not a bearer token, 403 for a token the file
  does not hold. ``/health``, ``/ready`` and unknown paths need none.
- Each client token has a token bucket: ``rate`` requests a second on average, ``burst`` at once; past it,
  429 with ``Retry-After`` (whole seconds until the bucket holds a request again).
- A body is read only up to ``max_body_bytes``: a larger ``Content-Length``, or a streamed body that grows
  past it, is 413 without reading the rest.

Every rejection answers FastAPI's shape, ``{"detail": "..."}`` (413 adds ``limit`` and ``value``), and is
counted by reason in ``mlp_serving_rejected_requests_total``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from include.serving.auth import BearerTokens

PROTECTED_PATHS = frozenset({"/predict", "/metrics"})
METRICS_PATH = "/metrics"
BEARER_CHALLENGE = 'Bearer realm="model-serving"'


@dataclass(frozen=True)
class Limits:
    """The request limits of one serving app; each must be at least 1 (``rate`` above 0)."""

    max_body_bytes: int = 2**20
    max_instances: int = 1000
    rate: float = 50.0  # requests per second per client token, on average
    burst: int = 100  # requests per client token at once

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_instances", "burst"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, not {self.rate}")


class RateLimiter:
    """A token bucket per client token: ``rate`` requests a second refill it, ``burst`` at most. Used from the
    event loop's thread only; it holds one bucket per token ever accepted, so it cannot grow without bound."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[bytes, tuple[float, float]] = {}  # token digest -> (requests left, when)

    def wait_seconds(self, key: bytes) -> float:
        """0, taking one request from ``key``'s bucket, if it holds one; else the seconds until it will."""
        now = self.clock()
        left, then = self._buckets.get(key, (float(self.burst), now))
        left = min(float(self.burst), left + (now - then) * self.rate)
        if left >= 1:
            self._buckets[key] = (left - 1, now)
            return 0.0
        self._buckets[key] = (left, now)
        return (1 - left) / self.rate


class RequestGuard:
    """The ASGI middleware of the module docstring; ``rejected(reason)`` counts each rejection."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: BearerTokens,
        limits: Limits,
        rejected: Callable[[str], None],
        metrics_port: int | None = None,
    ):
        self.app = app
        self.tokens = tokens
        self.limits = limits
        self.rejected = rejected
        self.metrics_port = metrics_port
        self.rate_limiter = RateLimiter(limits.rate, limits.burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self.metrics_port is not None:
            server = scope.get("server")
            on_metrics_port = server is not None and server[1] == self.metrics_port
            if (path == METRICS_PATH) != on_metrics_port:
                await JSONResponse({"detail": "Not Found"}, 404)(scope, receive, send)
                return
        rejection = self._check_token_and_rate(scope) if path in PROTECTED_PATHS else None
        if rejection is None:
            rejection = self._check_declared_length(scope)
        if rejection is not None:
            await rejection(scope, receive, send)
            return
        body, rejection = await self._read_body(receive)
        if rejection is not None:
            await rejection(scope, receive, send)
            return
        if body is None:  # the client went away
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _reject(self, reason: str, status: int, body: dict, headers: dict[str, str] | None = None) -> JSONResponse:
        self.rejected(reason)
        return JSONResponse(body, status, headers=headers)

    def _check_token_and_rate(self, scope: Scope) -> JSONResponse | None:
        header = _header(scope, b"authorization")
        if header is None:
            detail = "missing Authorization header: send Authorization: Bearer <token>"
            return self._reject("unauthenticated", 401, {"detail": detail}, {"WWW-Authenticate": BEARER_CHALLENGE})
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            detail = "the Authorization header is not a bearer token: send Authorization: Bearer <token>"
            challenge = f'{BEARER_CHALLENGE}, error="invalid_request"'
            return self._reject("unauthenticated", 401, {"detail": detail}, {"WWW-Authenticate": challenge})
        key = self.tokens.match(token)
        if key is None:
            return self._reject("forbidden", 403, {"detail": "the bearer token is not one this service accepts"})
        wait = self.rate_limiter.wait_seconds(key)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            limits = self.limits
            detail = (
                f"rate limit of {limits.rate:g} requests per second (burst {limits.burst}) for this token "
                f"exceeded: retry in {retry_after} s"
            )
            return self._reject("rate_limited", 429, {"detail": detail}, {"Retry-After": str(retry_after)})
        return None

    def _check_declared_length(self, scope: Scope) -> JSONResponse | None:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            return self._too_large(int(declared), f"a body of {int(declared)} bytes")
        return None

    def _too_large(self, value: int, what: str) -> JSONResponse:
        limit = self.limits.max_body_bytes
        detail = f"{what} is over the limit of {limit} bytes (--max-body-bytes)"
        return self._reject("body_too_large", 413, {"detail": detail, "limit": limit, "value": value})

    async def _read_body(self, receive: Receive) -> tuple[bytes | None, JSONResponse | None]:
        """The whole body, or a 413 once it grows past the limit (the rest unread); None if the client left."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                return None, self._too_large(size, f"a streamed body of at least {size} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lowercase), or None."""
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == name), None)
