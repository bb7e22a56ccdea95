"""A loopback stand-in for the few kube-apiserver endpoints the platform uses (stdlib only: http.server, threads).

No Kubernetes API server can run where the tests run, so ``KubeApiStandIn`` answers, on 127.0.0.1 and a free
port, just these requests, with the JSON shapes the real API server returns (``kind``, ``apiVersion``,
``metadata``; zero-valued ``status`` fields of a Deployment left out, as the API server does) so that the
``kubernetes`` and ``kubernetes_asyncio`` clients deserialise them:

- ``GET /readyz``: ``200 ok``, or ``500`` with a failed check when ``api_ready`` is false;
- ``GET /api/v1/nodes``: a ``NodeList``; ``nodes`` maps node names to their ``Ready`` condition;
- ``GET /apis/apps/v1/namespaces/{ns}/deployments/{name}``: the one ``Deployment`` (``spec.replicas``,
  ``status.replicas``/``readyReplicas``/``availableReplicas``); any other name is a 404 ``Status``;
- ``GET``, ``PUT`` and ``PATCH`` of ``.../deployments/{name}/scale``: an ``autoscaling/v1`` ``Scale``. ``PUT``
  honours ``metadata.resourceVersion`` (a stale one is a 409 Conflict, as on a real cluster); ``PATCH`` takes a
  JSON patch (a list of operations) or a merge / strategic merge patch. After a scale-up,
  ``availableReplicas`` reaches ``spec.replicas`` ``available_delay`` seconds later (never when it is None);
  a scale-down takes effect at once.

Knobs, settable at any time: ``api_ready``, ``nodes``, ``replicas`` and ``available_replicas`` (the deployment's
spec and status), ``available_delay``, ``latency`` (seconds added before every answer) and ``fail_with_status``
(answer every request with that HTTP status and a ``Status`` body); ``concurrent_scale_to`` plays another
writer (the HPA): the next scale write finds the scale already changed to that many replicas, and gets the
409 a stale resourceVersion gets. Every request must carry the bearer token of
``connection_env()``'s kubeconfig, or it is a 401, so a passing test proves the hooks used the connection.
``requests`` lists the ``(method, path)`` served, ``scale_writes`` the replica counts written.

``start()``/``stop()`` (or ``with KubeApiStandIn() as kube:``) run and join the server thread; the server stops
by itself after ``lifetime`` seconds, so a forgotten stand-in never outlives its test by much.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

CREATED = "2025-01-01T00:00:00Z"
DEPLOYMENT_PATH = re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)(?P<scale>/scale)?$")
STATUS_REASONS = {
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class KubeApiStandIn:
    """A threaded HTTP server on 127.0.0.1 that answers like a kube-apiserver for one Deployment."""

    def __init__(
        self,
        *,
        namespace: str = "mlp-serving",
        deployment: str = "model-serving",
        replicas: int = 2,
        available_replicas: int | None = None,
        nodes: dict[str, bool] | None = None,
        api_ready: bool = True,
        available_delay: float | None = 0.3,
        latency: float = 0.0,
        fail_with_status: int | None = None,
        concurrent_scale_to: int | None = None,
        token: str = "stand-in-token",
        lifetime: float = 120.0,
    ):
        self.namespace = namespace
        self.deployment = deployment
        self.replicas = replicas
        self.available_replicas = replicas if available_replicas is None else available_replicas
        self.nodes = {"node-a": True, "node-b": True, "node-c": True} if nodes is None else nodes
        self.api_ready = api_ready
        self.available_delay = available_delay
        self.latency = latency
        self.fail_with_status = fail_with_status
        self.concurrent_scale_to = concurrent_scale_to
        self.token = token
        self.lifetime = lifetime
        self.requests: list[tuple[str, str]] = []
        self.scale_writes: list[int] = []
        self._resource_version = 1
        self._available_at: float | None = None  # when a scale-up's replicas become available
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifetime_timer: threading.Timer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not running: call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> KubeApiStandIn:
        """Listen on a free loopback port and serve in a background thread."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="kube-api-stand-in", daemon=True
        )
        self._thread.start()
        self._lifetime_timer = threading.Timer(self.lifetime, self.stop)
        self._lifetime_timer.daemon = True
        self._lifetime_timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the server thread; idempotent."""
        with self._lock:
            server, thread, timer = self._server, self._thread, self._lifetime_timer
            self._thread = self._lifetime_timer = None
        self._stopping.set()
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        if thread is not None and server is not None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    def __enter__(self) -> KubeApiStandIn:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def kubeconfig(self) -> dict:
        """A kubeconfig for this stand-in: plain HTTP, the stand-in's bearer token."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "stand-in", "user": {"token": self.token}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "stand-in"}}],
            "current-context": "stand-in",
        }

    def connection_env(self, conn_id: str) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<ID>": ...}``: a cncf-kubernetes connection whose ``kube_config`` extra points here."""
        value = {"conn_type": "kubernetes", "extra": {"kube_config": self.kubeconfig()}}
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(value)}

    # The API objects, built under self._lock.

    def _settle(self) -> None:
        if self._available_at is not None and time.monotonic() >= self._available_at:
            self.available_replicas = self.replicas
            self._available_at = None

    def _set_replicas(self, replicas: int, by_client: bool = True) -> None:
        if by_client:
            self.scale_writes.append(replicas)
        if replicas != self.replicas:
            self._resource_version += 1
        if replicas < self.available_replicas:
            self.available_replicas = replicas
        if replicas > self.available_replicas and self.available_delay is not None:
            self._available_at = time.monotonic() + self.available_delay
        else:
            self._available_at = None
        self.replicas = replicas

    def _metadata(self) -> dict:
        return {
            "name": self.deployment,
            "namespace": self.namespace,
            "uid": "5f0c6c1e-0000-4000-8000-000000000001",
            "resourceVersion": str(self._resource_version),
            "generation": self._resource_version,
            "creationTimestamp": CREATED,
            "labels": {"app.kubernetes.io/name": self.deployment},
        }

    def _deployment(self) -> dict:
        available = min(self.available_replicas, self.replicas)
        status = {
            "observedGeneration": self._resource_version,
            "replicas": self.replicas,
            "updatedReplicas": self.replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": self.replicas - available,
        }
        condition = "True" if available >= 1 else "False"
        return {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": self._metadata(),
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": self.deployment}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": self.deployment}},
                    "spec": {"containers": [{"name": "serving", "image": "ghcr.io/mlp/platform:test"}]},
                },
            },
            "status": {key: value for key, value in status.items() if value}
            | {"conditions": [{"type": "Available", "status": condition, "reason": "MinimumReplicasAvailable"}]},
        }

    def _scale(self) -> dict:
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {key: value for key, value in self._metadata().items() if key not in ("labels", "generation")},
            "spec": {"replicas": self.replicas},
            "status": {"replicas": self.replicas, "selector": f"app.kubernetes.io/name={self.deployment}"},
        }

    def _node_list(self) -> dict:
        def node(name: str, ready: bool) -> dict:
            condition = {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else "KubeletNotReady",
                "lastHeartbeatTime": CREATED,
                "lastTransitionTime": CREATED,
            }
            return {
                "metadata": {"name": name, "resourceVersion": "1", "creationTimestamp": CREATED},
                "spec": {},
                "status": {"conditions": [condition]},
            }

        return {
            "kind": "NodeList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self._resource_version)},
            "items": [node(name, ready) for name, ready in self.nodes.items()],
        }

    def _apply_scale_write(self, method: str, body: object) -> tuple[int, dict]:
        """Apply a PUT (a Scale) or PATCH (JSON patch list, or merge patch) to the scale; (status, answer)."""
        if self.concurrent_scale_to is not None:
            self._set_replicas(self.concurrent_scale_to, by_client=False)
            self.concurrent_scale_to = None
        if isinstance(body, list):
            replicas = None
            for operation in body:
                if operation.get("path") != "/spec/replicas":
                    return 422, _status(422, f"the stand-in only patches /spec/replicas, not {operation.get('path')}")
                if operation.get("op") == "test" and operation.get("value") != self.replicas:
                    return 422, _status(422, f"test of /spec/replicas failed: it is {self.replicas}")
                if operation.get("op") in ("replace", "add"):
                    replicas = operation.get("value")
        elif isinstance(body, dict):
            if method == "PUT" and body.get("kind") != "Scale":
                return 422, _status(422, f"PUT of /scale needs a Scale, got kind {body.get('kind')!r}")
            expected = (body.get("metadata") or {}).get("resourceVersion")
            if expected is not None and expected != str(self._resource_version):
                message = (
                    f'Operation cannot be fulfilled on deployments.apps "{self.deployment}": the object has been '
                    "modified; please apply your changes to the latest version and try again"
                )
                return 409, _status(409, message)
            replicas = (body.get("spec") or {}).get("replicas")
        else:
            return 422, _status(422, "the body is not a JSON object or list")
        if replicas is not None:
            if not isinstance(replicas, int) or replicas < 0:
                return 422, _status(422, f"spec.replicas must be a non-negative integer, got {replicas!r}")
            self._set_replicas(replicas)
        return 200, self._scale()

    def _answer(self, method: str, path: str, body: object) -> tuple[int, str, bytes]:
        """The (status, content type, body) for one authorised request."""
        with self._lock:
            self.requests.append((method, path))
            self._settle()
            if self.fail_with_status is not None:
                return _json(self.fail_with_status, _status(self.fail_with_status, "injected by the stand-in"))
            if path == "/readyz" and method == "GET":
                if self.api_ready:
                    return 200, "text/plain; charset=utf-8", b"ok"
                return 500, "text/plain; charset=utf-8", b"[-]etcd failed: reason withheld\nreadyz check failed\n"
            if path == "/api/v1/nodes" and method == "GET":
                return _json(200, self._node_list())
            match = DEPLOYMENT_PATH.match(path)
            if not match:
                return _json(404, _status(404, "the server could not find the requested resource"))
            if (match["ns"], match["name"]) != (self.namespace, self.deployment):
                return _json(404, _status(404, f'deployments.apps "{match["name"]}" not found'))
            if not match["scale"]:
                if method == "GET":
                    return _json(200, self._deployment())
            elif method == "GET":
                return _json(200, self._scale())
            elif method in ("PUT", "PATCH"):
                return _json(*self._apply_scale_write(method, body))
            return _json(405, _status(405, f"{method} is not supported on {path} by the stand-in"))


def _status(code: int, message: str) -> dict:
    """A ``v1 Status`` failure, as the API server sends with every error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": STATUS_REASONS.get(code, "Unknown"),
        "code": code,
    }


def _json(code: int, document: dict) -> tuple[int, str, bytes]:
    return code, "application/json", json.dumps(document).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that gave up (a timed-out probe) is expected; do not print its broken pipe."""


def _handler_for(stand_in: KubeApiStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args) -> None:
            """Quiet: tests assert on ``stand_in.requests`` instead."""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            stand_in._stopping.wait(stand_in.latency)
            path = urlsplit(self.path).path
            if self.headers.get("Authorization") != f"Bearer {stand_in.token}":
                code, content_type, payload = _json(401, _status(401, "Unauthorized"))
            else:
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    code, content_type, payload = _json(400, _status(400, "the request body is not JSON"))
                else:
                    code, content_type, payload = stand_in._answer(self.command, path, body)
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = _serve

    return Handler
