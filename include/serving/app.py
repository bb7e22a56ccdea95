"""The model-serving service of one region: serves the version of a model that the region's rollout pointer names.

A version is served only once its manifest's signature is from a trusted key, its manifest is the one the
pointer names, and every file matches the manifest's SHA-256 (``include.serving.loader``). A background thread
follows the pointer and re-checks the served version cheaply (``include.serving.state``): a new version is
loaded beside the served one and swapped in only if it verifies; a refused one leaves the old one serving.

Predictions run on at most ``capacity`` threads at once; further requests wait their turn and count as in
flight, so in-flight / capacity is the service's utilisation. Endpoints:

- ``POST /predict``: ``{"instances": [[...], ...]}`` -> ``{"predictions": [...], "model", "version", "region"}``,
  ``version`` being the version that computed these predictions
- ``GET /health``: liveness (the process answers)
- ``GET /ready``: 200 while a verified version is served (which, its SHA-256, signing key, last verification,
  the rollout pointer, and a version refused, with the reason); 503 with the reason otherwise
- ``GET /metrics``: Prometheus text (``include.serving.metrics``)
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path

from pydantic import BaseModel

from include.catalogue import Catalogue
from include.clouds.objectstore import ObjectStore, store_for
from include.replication.signing import TrustedKeys
from include.serving.metrics import ServingMetrics
from include.serving.state import ServingState, Status, StoreWatcher

FIRST_LOAD_WAIT_SECONDS = 10.0  # start-up waits at most this long for the first load attempt


class PredictRequest(BaseModel):
    """The body of ``POST /predict``: rows of feature values."""

    instances: list[list[float]]


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


def create_app(
    catalogue: Catalogue,
    region_name: str,
    model: str,
    *,
    trusted_keys: Path,
    reload_interval: float = 5.0,
    verify_interval: float = 30.0,
    capacity: int = 32,
    store: ObjectStore | None = None,
):
    """The FastAPI app serving ``region_name``'s rolled-out version of ``model``.

    ``trusted_keys``: the directory of public keys whose signatures are accepted (``<key_id>.pub`` each);
    ``reload_interval``: seconds between reads of the rollout pointer (> 0);
    ``verify_interval``: seconds between re-verifications of the served version (0 disables them);
    ``capacity``: how many predictions run at once (>= 1);
    ``store``: the region's store (default: the one its ``storage`` connection reaches).
    """
    import anyio
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST

    if reload_interval <= 0:
        raise ValueError(f"reload_interval must be positive, not {reload_interval}")
    if verify_interval < 0:
        raise ValueError(f"verify_interval must be 0 (disabled) or positive, not {verify_interval}")
    if capacity < 1:
        raise ValueError(f"capacity must be at least 1, not {capacity}")
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

    app = FastAPI(title=f"Model serving ({region_name})", lifespan=lifespan)
    app.state.serving = state

    @app.get("/health")
    async def health() -> dict:
        return {"status": "alive", "region": region_name}

    @app.get("/ready")
    async def ready():
        status_code, body = readiness(state, state.status)
        return JSONResponse(body, status_code=status_code)

    @app.post("/predict")
    async def predict(request: PredictRequest) -> dict:
        started = time.perf_counter()
        served = state.status.served  # this version answers the whole request, even if another is swapped in
        version = served.version if served is not None else ""
        serving_metrics.request_started()
        failed = True
        try:
            if served is None:
                raise HTTPException(status_code=503, detail=state.status.reason)
            predictions = await anyio.to_thread.run_sync(
                served.predict, request.instances, limiter=app.state.prediction_slots
            )
            failed = False
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=f"bad instances: {exc}") from None
        finally:
            serving_metrics.request_finished(time.perf_counter() - started, failed, version)
        return {"predictions": predictions, "model": model, "version": version, "region": region_name}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(serving_metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app
