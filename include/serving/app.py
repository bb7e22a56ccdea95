"""The model-serving service of one region: serves the version of a model that the region's rollout pointer names.

A version is served only once its manifest's signature is from a trusted key, its manifest is the one the
pointer names, and every file matches the manifest's SHA-256 (``include.serving.loader``). A background thread
follows the pointer and re-checks the served version cheaply (``include.serving.state``): a new version is
loaded beside the served one and swapped in only if it verifies; a refused one leaves the old one serving.

Predictions run on at most ``capacity`` threads at once; further requests wait their turn and count as in
flight, so in-flight / capacity is the service's utilisation. Every request first passes the guard
(``include.serving.guard``): a bearer token for ``/predict`` and ``/metrics``, a rate limit per token, a body
size limit. Endpoints:

- ``POST /predict``: ``{"instances": [[...], ...]}`` -> ``{"predictions": [...], "model", "version", "region"}``,
  ``version`` being the version that computed these predictions; at most ``max_instances`` instances
- ``GET /health``: liveness (the process answers); no token
- ``GET /ready``: 200 while a verified version is served (which, its SHA-256, signing key, last verification,
  the rollout pointer, and a version refused, with the reason); 503 with the reason otherwise; no token
- ``GET /metrics``: Prometheus text (``include.serving.metrics``)

FastAPI's ``/docs``, ``/redoc`` and ``/openapi.json`` are not served; ``openapi_document()`` is the API's
OpenAPI document (``python -m include.serving openapi``, checked in as ``docs/api/serving-openapi.json``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from include.catalogue import Catalogue
from include.clouds.objectstore import ObjectStore, store_for
from include.errors import quoted
from include.replication.signing import TrustedKeys
from include.serving.auth import BearerTokens
from include.serving.examples import EXAMPLES, IRIS_SETOSA
from include.serving.guard import PROTECTED_PATHS, Limits, RequestGuard
from include.serving.metrics import ServingMetrics
from include.serving.state import ServingState, Status, StoreWatcher

FIRST_LOAD_WAIT_SECONDS = 10.0  # start-up waits at most this long for the first load attempt
API_TITLE = "Model serving"
API_VERSION = "1"
SECURITY_SCHEME = "bearerToken"


class PredictRequest(BaseModel):
    """The body of ``POST /predict``: rows of feature values."""

    instances: list[list[float]] = Field(description="rows of feature values, at most --max-instances of them",
                                         examples=[[IRIS_SETOSA]])  # fmt: skip


class PredictResponse(BaseModel):
    """The answer of ``POST /predict``: a prediction per instance, and which version computed them."""

    predictions: list[Any]
    model: str
    version: str = Field(description="the version that computed these predictions")
    region: str


class HealthResponse(BaseModel):
    """The answer of ``GET /health``."""

    status: str = Field(examples=["alive"])
    region: str


class Rollout(BaseModel):
    """The region's rollout pointer as ``/ready`` shows it."""

    version: str
    set_by: str = Field(description="replication or rollback")
    set_at: str


class Refusal(BaseModel):
    """The version the pointer names that is not served, and why."""

    version: str
    sha256: str
    reason: str
    at: float


class ReadyResponse(BaseModel):
    """The answer of ``GET /ready``: 200 while a verified version is served, 503 (with ``reason``) otherwise."""

    ready: bool
    region: str
    model: str
    rollout: Rollout | None
    refused: Refusal | None
    version: str | None = Field(default=None, description="ready: the version served")
    sha256: str | None = Field(default=None, description="ready: its manifest's total SHA-256")
    signed_by: str | None = Field(default=None, description="ready: the key that signed it")
    verified_at: float | None = Field(default=None, description="ready: Unix time of its last verification")
    reason: str | None = Field(default=None, description="not ready: why nothing is served")


class ErrorBody(BaseModel):
    """An error: what is wrong, and what to do about it."""

    detail: str


class LimitErrorBody(ErrorBody):
    """A request over a limit: the limit and the request's value."""

    limit: int
    value: int


class ValidationProblem(BaseModel):
    """One place where the body does not fit the schema; ``input`` is quoted and cut to 80 characters."""

    loc: list[str | int]
    msg: str
    type: str
    input: str | None = None


class InvalidBody(BaseModel):
    """A 422: the body does not fit the schema (a list of problems), or the model refuses the instances (a text)."""

    detail: list[ValidationProblem] | str


@dataclass
class Serving:
    """What the routes of one app need: its state, metrics and limits."""

    state: ServingState
    metrics: ServingMetrics
    model: str
    region: str
    max_instances: int


MODELS = {401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 405: ErrorBody, 413: LimitErrorBody, 422: InvalidBody,
          429: ErrorBody, 503: ErrorBody}  # fmt: skip
DESCRIPTIONS = {
    200: "OK",
    401: "no bearer token: send `Authorization: Bearer <token>`",
    403: "the bearer token is not one of the service's tokens",
    405: "the path does not take this method",
    413: "the body or the instance count is over its limit",
    422: "the body does not fit the schema, or the model refuses the instances",
    429: "over the rate limit of this token: retry after `Retry-After` seconds",
    503: "no verified version is served (the reason says why)",
}


def _responses(path: str) -> dict[int, dict]:
    """The error responses a path declares, each with its documented examples (whatever their method: the
    405 of a method the path does not take is documented there too)."""
    by_status: dict[int, dict] = defaultdict(dict)
    for example in EXAMPLES:
        if example.path == path and example.status != 200:
            by_status[example.status][example.name] = {"summary": example.summary, "value": example.response}
    return {
        status: {"model": ReadyResponse if path == "/ready" else MODELS[status], "description": DESCRIPTIONS[status],
                 "content": {"application/json": {"examples": examples}}}
        for status, examples in sorted(by_status.items())
    }  # fmt: skip


def _success_examples(method: str, path: str) -> dict:
    return {e.name: {"summary": e.summary, "value": e.response} for e in EXAMPLES
            if (e.method, e.path, e.status) == (method, path, 200)}  # fmt: skip


def readiness(state: ServingState, status: Status) -> tuple[int, dict]:
    """The HTTP status and body of ``/ready``."""
    body = {
        "ready": status.served is not None,
        "region": state.region.name,
        "model": state.model,
        "rollout": None if status.pointer is None else {
            key: value for key, value in asdict(status.pointer).items() if key in ("version", "set_by", "set_at")
        },
        "refused": None if status.refused is None else status.refused.as_dict(),
    }  # fmt: skip
    if status.served is None:
        return 503, body | {"reason": status.reason}
    served = status.served
    return 200, body | {
        "version": served.version,
        "sha256": served.manifest.total_sha256,
        "signed_by": served.signed_by,
        "verified_at": status.last_verified,
    }


def build_api(lifespan=None) -> FastAPI:
    """The FastAPI app of the serving API, its routes and OpenAPI document, with no state: ``create_app`` adds
    the state, the guard and the watcher; ``openapi_document`` reads its schema."""
    app = FastAPI(title=API_TITLE, version=API_VERSION, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)  # fmt: skip
    secured = {"security": [{SECURITY_SCHEME: []}]}

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        request.app.state.serving.metrics.request_rejected("invalid_body")
        problems = [
            {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"],
             "input": quoted(error["input"]) if "input" in error else None}
            for error in exc.errors()
        ]  # fmt: skip
        return JSONResponse({"detail": problems}, 422)

    @app.get("/health", response_model=HealthResponse, responses=_responses("/health"),
             openapi_extra={"responses": {"200": {"content": {"application/json": {
                 "examples": _success_examples("GET", "/health")}}}}})  # fmt: skip
    async def health(request: Request) -> dict:
        """Liveness: 200 while the process answers. No token; reveals nothing secret."""
        return {"status": "alive", "region": request.app.state.serving.region}

    @app.get("/ready", response_model=ReadyResponse, responses=_responses("/ready"),
             openapi_extra={"responses": {"200": {"content": {"application/json": {
                 "examples": _success_examples("GET", "/ready")}}}}})  # fmt: skip
    async def ready(request: Request) -> JSONResponse:
        """Readiness: 200 while a verified version is served, 503 with the reason otherwise. No token."""
        state = request.app.state.serving.state
        status_code, body = readiness(state, state.status)
        return JSONResponse(body, status_code=status_code)

    @app.post("/predict", response_model=PredictResponse, responses=_responses("/predict"),
              openapi_extra=secured | {"responses": {"200": {"content": {"application/json": {
                  "examples": _success_examples("POST", "/predict")}}}}})  # fmt: skip
    async def predict(request: Request, body: PredictRequest) -> Any:
        """Predictions from the served version, one per instance; the answer names the version."""
        serving: Serving = request.app.state.serving
        if len(body.instances) > serving.max_instances:
            serving.metrics.request_rejected("too_many_instances")
            limit, count = serving.max_instances, len(body.instances)
            detail = f"{count} instances are over the limit of {limit} (--max-instances)"
            return JSONResponse({"detail": detail, "limit": limit, "value": count}, 413)
        started = time.perf_counter()
        state = serving.state
        served = state.status.served  # this version answers the whole request, even if another is swapped in
        version = served.version if served is not None else ""
        serving.metrics.request_started()
        failed = True
        try:
            if served is None:
                raise HTTPException(status_code=503, detail=state.status.reason)
            predictions = await anyio.to_thread.run_sync(
                served.predict, body.instances, limiter=request.app.state.prediction_slots
            )
            failed = False
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=f"bad instances: {quoted(str(exc))}") from None
        finally:
            serving.metrics.request_finished(time.perf_counter() - started, failed, version)
        return {"predictions": predictions, "model": serving.model, "version": version, "region": serving.region}

    @app.get("/metrics", response_class=Response, response_model=None, responses=_responses("/metrics"),
             openapi_extra=secured | {"responses": {"200": {"description": "Prometheus text", "content": {
                 CONTENT_TYPE_LATEST: {"schema": {"type": "string"},
                                       "examples": _success_examples("GET", "/metrics")}}}}})  # fmt: skip
    async def metrics(request: Request) -> Response:
        """Prometheus text: the ``mlp_*`` series and the process's metrics."""
        return Response(request.app.state.serving.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes, description=(
                "The model-serving API of one region (docs/api/serving.md). `/predict` and `/metrics` need "
                "`Authorization: Bearer <token>`; `/health` and `/ready` need none. Any other path answers 404 "
                "(`components.responses.NotFound`), `/docs` and `/openapi.json` included."))  # fmt: skip
            components = document.setdefault("components", {})
            components["securitySchemes"] = {
                SECURITY_SCHEME: {"type": "http", "scheme": "bearer",
                                  "description": "a token of the service's --token-file"}
            }  # fmt: skip
            [unknown] = [e for e in EXAMPLES if e.status == 404]
            components["responses"] = {"NotFound": {
                "description": "a path the service does not serve",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"},
                                                 "example": unknown.response}}}}  # fmt: skip
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi
    assert {route.path for route in app.routes} >= PROTECTED_PATHS  # noqa: S101 - the guard's paths exist
    return app


def openapi_document() -> dict:
    """The OpenAPI document of the serving API, built without any state, store or watcher."""
    return build_api().openapi()


def create_app(
    catalogue: Catalogue,
    region_name: str,
    model: str,
    *,
    trusted_keys: Path,
    token_file: Path,
    limits: Limits | None = None,
    metrics_port: int | None = None,
    reload_interval: float = 5.0,
    verify_interval: float = 30.0,
    capacity: int = 32,
    store: ObjectStore | None = None,
):
    """The FastAPI app serving ``region_name``'s rolled-out version of ``model``.

    ``trusted_keys``: the directory of public keys whose signatures are accepted (``<key_id>.pub`` each);
    ``token_file``: the bearer tokens ``/predict`` and ``/metrics`` accept, one a line (``include.serving.auth``);
    ``limits``: body size, instance count and rate limits (``include.serving.guard``; default ``Limits()``);
    ``metrics_port``: if given, ``/metrics`` is answered only on this port, and only ``/metrics`` is;
    ``reload_interval``: seconds between reads of the rollout pointer (> 0);
    ``verify_interval``: seconds between re-verifications of the served version (0 disables them);
    ``capacity``: how many predictions run at once (>= 1);
    ``store``: the region's store (default: the one its ``storage`` connection reaches).
    """
    if reload_interval <= 0:
        raise ValueError(f"reload_interval must be positive, not {reload_interval}")
    if verify_interval < 0:
        raise ValueError(f"verify_interval must be 0 (disabled) or positive, not {verify_interval}")
    if capacity < 1:
        raise ValueError(f"capacity must be at least 1, not {capacity}")
    limits = limits or Limits()
    tokens = BearerTokens(token_file)
    region = catalogue.region(region_name)
    trusted = TrustedKeys.from_directory(trusted_keys)
    state = ServingState(catalogue, region, model, store or store_for(region), trusted)
    serving_metrics = ServingMetrics(state, capacity)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.prediction_slots = anyio.CapacityLimiter(capacity)
        watcher = StoreWatcher(state, reload_interval, verify_interval)
        watcher.start()
        # /ready answers with the first attempt's outcome, unless the store takes too long to answer
        await anyio.to_thread.run_sync(watcher.first_attempt_done.wait, FIRST_LOAD_WAIT_SECONDS)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(watcher.stop)

    app = build_api(lifespan)
    app.state.serving = Serving(state, serving_metrics, model, region_name, limits.max_instances)
    app.add_middleware(RequestGuard, tokens=tokens, limits=limits, rejected=serving_metrics.request_rejected,
                       metrics_port=metrics_port)  # fmt: skip
    return app
