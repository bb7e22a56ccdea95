"""The model-serving service of one region: loads a model version from the region's store and serves it.

A model is served only while every file of the version, read from the region's store, matches the SHA-256 in
the manifest. A background thread keeps the service in step with the store:

- until a verified model is loaded (the version may still be replicating, or its copy may be damaged), it
  retries every ``reload_interval`` seconds; ``/ready`` answers 503 with the reason meanwhile;
- once loaded, it re-reads the manifest and every file every ``verify_interval`` seconds (0: never). A copy
  that no longer matches unloads the model: ``/ready`` and ``/predict`` answer 503 naming the file and both
  checksums, and loading is retried until a verified copy is back. A store that cannot be reached leaves the
  verified model in service; only the last-verified timestamp stops advancing.

Predictions run on at most ``capacity`` threads at once; further requests wait their turn and count as in
flight, so in-flight / capacity is the service's utilisation. Endpoints:

- ``POST /predict``: ``{"instances": [[...], ...]}`` -> ``{"predictions": [...], "model": ..., "version": ...}``
- ``GET /health``: liveness (the process answers)
- ``GET /ready``: readiness (a verified model is loaded), 503 with the reason otherwise
- ``GET /metrics``: Prometheus text from ``prometheus_client``: requests, errors, a latency histogram, model
  loaded, in-flight requests, capacity and the time of the last successful verification, each labelled with
  the region, model and version served; and the standard ``process_*`` metrics (CPU seconds, resident memory,
  which the cost pipeline's right-sizing samples)
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from pydantic import BaseModel

from include.catalogue import Catalogue, Region
from include.clouds.objectstore import ObjectStore, store_for
from include.errors import CopyRejected, InvalidModelVersion, ModelNotReady, ObjectNotFound
from include.replication.manifest import Manifest
from include.replication.replicate import read_manifest

MODEL_FILE = "model.pkl"
FIRST_LOAD_WAIT_SECONDS = 10.0  # start-up waits at most this long for the first load attempt
STOP_WAIT_SECONDS = 10.0

log = logging.getLogger(__name__)


class PredictRequest(BaseModel):
    """The body of ``POST /predict``: rows of feature values."""

    instances: list[list[float]]


@dataclass
class LoadedModel:
    manifest: Manifest
    estimator: object


@dataclass
class ServingState:
    """What the service knows: the loaded model (if any), why it is not ready, and when it was last verified."""

    region: Region
    model: str
    version: str
    capacity: int = 32
    loaded: LoadedModel | None = None
    not_ready_reason: str = "not loaded yet"
    last_verified: float = 0.0  # Unix time of the last successful verification, 0 before the first
    lock: threading.Lock = field(default_factory=threading.Lock)
    store: ObjectStore | None = field(default=None, repr=False)

    def refresh(self) -> None:
        """Verify the store's copy of the version and serve it; unload the model if the copy no longer matches.

        A copy identical to the loaded one only renews the verification time. A store that cannot be read keeps
        a loaded model in service and leaves an unloaded one not ready, with the error as the reason.
        """
        try:
            manifest, files = self._read_verified_copy()
        except CopyRejected as exc:
            if self.loaded is not None:
                log.warning("unloading %s %s: %s", self.model, self.version, exc)
            self._not_ready(str(exc))
            return
        except Exception as exc:  # the store is unreachable or failing: nothing was learnt about the copy
            if self.loaded is not None:
                log.warning("cannot re-verify %s %s (still serving it): %s", self.model, self.version, exc)
            else:
                self._not_ready(f"cannot read {self.model} {self.version} from {self.region.name}: {exc}")
            return
        loaded = self.loaded
        if loaded is not None and loaded.manifest.total_sha256 == manifest.total_sha256:
            with self.lock:
                self.last_verified = time.time()
            return
        try:
            estimator = pickle.loads(files[MODEL_FILE])  # noqa: S301 - bytes verified against the manifest
        except Exception as exc:
            self._not_ready(f"{MODEL_FILE} of {self.model} {self.version} does not unpickle: {exc}")
            return
        if loaded is not None:
            log.warning("%s %s changed in the store; serving the new verified copy", self.model, self.version)
        with self.lock:
            self.loaded, self.not_ready_reason = LoadedModel(manifest, estimator), ""
            self.last_verified = time.time()

    def _read_verified_copy(self) -> tuple[Manifest, dict[str, bytes]]:
        """The manifest and files of the version in the region's store, each file checked against its SHA-256."""
        if self.store is None:
            self.store = store_for(self.region)
        try:
            manifest = read_manifest(self.store, self.model, self.version)
        except InvalidModelVersion as exc:
            raise CopyRejected(str(exc)) from None
        if manifest is None:
            raise CopyRejected(f"{self.model} {self.version} has no manifest in {self.region.name}")
        if MODEL_FILE not in {model_file.path for model_file in manifest.files}:
            raise CopyRejected(f"{self.model} {self.version} has no {MODEL_FILE}")
        files = {}
        for model_file in manifest.files:
            try:
                data = self.store.get_bytes(manifest.key(model_file.path))
            except ObjectNotFound:
                raise CopyRejected(
                    f"{model_file.path} is in the manifest but missing from {self.region.name}"
                ) from None
            actual = hashlib.sha256(data).hexdigest()
            if actual != model_file.sha256:
                raise CopyRejected(
                    f"{model_file.path} in {self.region.name} has SHA-256 {actual}, "
                    f"the manifest says {model_file.sha256}: refusing to serve it"
                )
            files[model_file.path] = data
        return manifest, files

    def _not_ready(self, reason: str) -> None:
        with self.lock:
            self.loaded, self.not_ready_reason = None, reason

    def predict(self, instances: list[list[float]]) -> list:
        loaded = self.loaded
        if loaded is None:
            raise ModelNotReady(self.not_ready_reason)
        return loaded.estimator.predict(instances).tolist()


class ServingMetrics:
    """The service's Prometheus metrics, in a registry of its own so that several apps in one process never collide.

    Every ``mlp_*`` series carries the labels ``region``, ``model`` and ``version`` (the version served); the
    registry also holds the process's standard ``process_*`` metrics.
    """

    def __init__(self, state: ServingState):
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        label_names = ("region", "model", "version")
        label_values = (state.region.name, state.model, state.version)

        def series(kind, name: str, documentation: str):
            return kind(name, documentation, label_names, registry=self.registry).labels(*label_values)

        self.requests = series(Counter, "mlp_predict_requests", "Predict requests answered, failed ones included")
        self.errors = series(Counter, "mlp_predict_errors", "Predict requests that failed")
        self.latency = series(Histogram, "mlp_predict_latency_seconds", "Time to answer a predict request")
        self.inflight = series(Gauge, "mlp_serving_inflight_requests", "Predict requests running or waiting")
        capacity = series(Gauge, "mlp_serving_capacity", "Predictions that run at once")
        capacity.set(state.capacity)
        loaded = series(Gauge, "mlp_model_loaded", "1 while a verified model is loaded, else 0")
        loaded.set_function(lambda: float(state.loaded is not None))
        verified = series(Gauge, "mlp_model_last_verified_timestamp_seconds", "Unix time of the last verification")
        verified.set_function(lambda: state.last_verified)

    def request_started(self) -> None:
        """Count a predict request in flight (running, or waiting for a prediction slot)."""
        self.inflight.inc()

    def request_finished(self, seconds: float, failed: bool) -> None:
        """Count a predict request answered after ``seconds``, and as an error if it ``failed``."""
        self.inflight.dec()
        self.requests.inc()
        if failed:
            self.errors.inc()
        self.latency.observe(seconds)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class StoreWatcher:
    """The background thread that loads the model until it is verified, then re-verifies it periodically."""

    def __init__(self, state: ServingState, reload_interval: float, verify_interval: float):
        self.state = state
        self.reload_interval = reload_interval
        self.verify_interval = verify_interval
        self.first_attempt_done = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"serving-watch-{state.region.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it (an attempt in progress finishes first)."""
        self._stopping.set()
        self._thread.join(STOP_WAIT_SECONDS)
        if self._thread.is_alive():
            log.warning("%s still busy with the store after %ss", self._thread.name, STOP_WAIT_SECONDS)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.state.refresh()
            except Exception:  # a bug must not end the thread: the next attempt may succeed
                log.exception("refreshing %s %s failed", self.state.model, self.state.version)
            self.first_attempt_done.set()
            if self.state.loaded is None:
                self._stopping.wait(self.reload_interval)
            elif self.verify_interval > 0:
                self._stopping.wait(self.verify_interval)
            else:
                self._stopping.wait()


def create_app(
    catalogue: Catalogue,
    region_name: str,
    model: str,
    version: str,
    *,
    reload_interval: float = 5.0,
    verify_interval: float = 30.0,
    capacity: int = 32,
):
    """The FastAPI app serving ``model`` ``version`` from ``region_name``'s store.

    ``reload_interval``: seconds between load attempts while no verified model is loaded (> 0);
    ``verify_interval``: seconds between re-verifications of a loaded model (0 disables them);
    ``capacity``: how many predictions run at once (>= 1).
    """
    import anyio
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse, Response

    if reload_interval <= 0:
        raise ValueError(f"reload_interval must be positive, not {reload_interval}")
    if verify_interval < 0:
        raise ValueError(f"verify_interval must be 0 (disabled) or positive, not {verify_interval}")
    if capacity < 1:
        raise ValueError(f"capacity must be at least 1, not {capacity}")
    state = ServingState(catalogue.region(region_name), model, version, capacity=capacity)
    serving_metrics = ServingMetrics(state)

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

    app = FastAPI(title=f"Model serving ({region_name})", lifespan=lifespan)
    app.state.serving = state

    @app.get("/health")
    async def health() -> dict:
        return {"status": "alive", "region": region_name}

    @app.get("/ready")
    async def ready():
        loaded = state.loaded
        if loaded is None:
            return JSONResponse({"ready": False, "reason": state.not_ready_reason}, status_code=503)
        return {
            "ready": True,
            "model": model,
            "version": version,
            "sha256": loaded.manifest.total_sha256,
            "verified_at": state.last_verified,
        }

    @app.post("/predict")
    async def predict(request: PredictRequest) -> dict:
        started = time.perf_counter()
        failed = True
        serving_metrics.request_started()
        try:
            predictions = await anyio.to_thread.run_sync(
                state.predict, request.instances, limiter=app.state.prediction_slots
            )
            failed = False
        except ModelNotReady as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=f"bad instances: {exc}") from None
        finally:
            serving_metrics.request_finished(time.perf_counter() - started, failed)
        return {"predictions": predictions, "model": model, "version": version, "region": region_name}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(serving_metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app
