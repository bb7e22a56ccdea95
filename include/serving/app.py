"""The model-serving service of one region: loads a model version from the region's store and serves it.

Before serving, every file of the version is read from the region's store and its SHA-256 compared with the
manifest; a model that does not match is never loaded. Endpoints:

- ``POST /predict``: ``{"instances": [[...], ...]}`` -> ``{"predictions": [...], "model": ..., "version": ...}``
- ``GET /health``: liveness (the process answers)
- ``GET /ready``: readiness (a verified model is loaded), 503 with the reason otherwise
- ``GET /metrics``: Prometheus text (requests, errors, latency, model loaded)
"""

from __future__ import annotations

import hashlib
import pickle
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from pydantic import BaseModel

from include.catalogue import Catalogue, Region
from include.objectstore import store_for
from include.replication.manifest import Manifest
from include.replication.replicate import read_manifest

MODEL_FILE = "model.pkl"


class PredictRequest(BaseModel):
    """The body of ``POST /predict``: rows of feature values."""

    instances: list[list[float]]


class ModelNotReady(RuntimeError):
    """No verified model is loaded; the message says why."""


@dataclass
class LoadedModel:
    manifest: Manifest
    estimator: object


@dataclass
class ServingState:
    """What the service knows: the loaded model (if any), why it is not ready, and its counters."""

    region: Region
    model: str
    version: str
    loaded: LoadedModel | None = None
    not_ready_reason: str = "not loaded yet"
    requests: int = 0
    errors: int = 0
    latency_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> None:
        """Read the version from the region's store, check every file's SHA-256, then load the model."""
        store = store_for(self.region)
        manifest = read_manifest(store, self.model, self.version)
        if manifest is None:
            self._not_ready(f"{self.model} {self.version} has no manifest in {self.region.name}")
            return
        files = {}
        for model_file in manifest.files:
            data = store.get_bytes(manifest.key(model_file.path))
            actual = hashlib.sha256(data).hexdigest()
            if actual != model_file.sha256:
                self._not_ready(
                    f"{model_file.path} in {self.region.name} has SHA-256 {actual}, "
                    f"the manifest says {model_file.sha256}: refusing to serve it"
                )
                return
            files[model_file.path] = data
        if MODEL_FILE not in files:
            self._not_ready(f"{self.model} {self.version} has no {MODEL_FILE}")
            return
        estimator = pickle.loads(files[MODEL_FILE])  # noqa: S301 - bytes verified against the manifest above
        with self.lock:
            self.loaded, self.not_ready_reason = LoadedModel(manifest, estimator), ""

    def _not_ready(self, reason: str) -> None:
        with self.lock:
            self.loaded, self.not_ready_reason = None, reason

    def predict(self, instances: list[list[float]]) -> list:
        loaded = self.loaded
        if loaded is None:
            raise ModelNotReady(self.not_ready_reason)
        return loaded.estimator.predict(instances).tolist()

    def metrics(self) -> str:
        """Prometheus text exposition of the service's counters."""
        labels = f'region="{self.region.name}",model="{self.model}",version="{self.version}"'
        return "\n".join(
            [
                "# TYPE mlp_predict_requests_total counter",
                f"mlp_predict_requests_total{{{labels}}} {self.requests}",
                "# TYPE mlp_predict_errors_total counter",
                f"mlp_predict_errors_total{{{labels}}} {self.errors}",
                "# TYPE mlp_predict_latency_seconds_sum counter",
                f"mlp_predict_latency_seconds_sum{{{labels}}} {self.latency_seconds:.6f}",
                "# TYPE mlp_model_loaded gauge",
                f"mlp_model_loaded{{{labels}}} {1 if self.loaded else 0}",
                "",
            ]
        )


def create_app(catalogue: Catalogue, region_name: str, model: str, version: str):
    """The FastAPI app serving ``model`` ``version`` from ``region_name``'s store."""
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse, PlainTextResponse

    state = ServingState(catalogue.region(region_name), model, version)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.load()  # before the first request: /ready answers only once this has run
        yield

    app = FastAPI(title=f"Model serving ({region_name})", lifespan=lifespan)
    app.state.serving = state

    @app.get("/health")
    def health() -> dict:
        return {"status": "alive", "region": region_name}

    @app.get("/ready")
    def ready():
        if state.loaded is None:
            return JSONResponse({"ready": False, "reason": state.not_ready_reason}, status_code=503)
        return {"ready": True, "model": model, "version": version, "sha256": state.loaded.manifest.total_sha256}

    @app.post("/predict")
    def predict(request: PredictRequest) -> dict:
        started = time.perf_counter()
        try:
            predictions = state.predict(request.instances)
        except ModelNotReady as exc:
            state.errors += 1
            raise HTTPException(status_code=503, detail=str(exc)) from None
        except ValueError as exc:
            state.errors += 1
            raise HTTPException(status_code=422, detail=f"bad instances: {exc}") from None
        finally:
            state.requests += 1
            state.latency_seconds += time.perf_counter() - started
        return {"predictions": predictions, "model": model, "version": version, "region": region_name}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        return state.metrics()

    return app
