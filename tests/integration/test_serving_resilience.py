"""The serving service keeps in step with its region's store (the emulators): it loads a version that arrives
after it started, drops a model whose store copy stops matching the manifest, and serves it again once the copy
is restored; /metrics carries what the health probes read."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from include.catalogue import REPO_ROOT, load_catalogue
from include.clouds.objectstore import store_for
from include.health.probes import metric_samples, utilisation_from_metrics
from include.replication.replicate import register_model_version
from include.serving.app import create_app
from localdev.demo import demo_model_files
from localdev.processes import free_port

pytestmark = pytest.mark.integration
REGION = "gcp-europe-west1"
IRIS_SETOSA = [5.1, 3.5, 1.4, 0.2]
FAST = {"reload_interval": 0.2, "verify_interval": 0.5}


def wait_for(predicate, timeout: float, what: str) -> float:
    """Poll ``predicate`` every 50 ms; the seconds it took to hold. Fails the test after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what} not within {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - started


def gauge(metrics_text: str, name: str) -> float:
    """The value of the one sample called ``name`` in the /metrics text."""
    values = [sample.value for sample in metric_samples(metrics_text) if sample.name == name]
    assert len(values) == 1, f"{name} not exactly once in /metrics:\n{metrics_text}"
    return values[0]


@pytest.fixture(scope="module")
def region(local_clouds):
    return load_catalogue().region(REGION)


@pytest.fixture(scope="module")
def model_files() -> dict[str, bytes]:
    return demo_model_files()


def test_becomes_ready_once_the_version_is_registered(region, model_files):
    with TestClient(create_app(load_catalogue(), REGION, "resilience-late", "1", **FAST)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and "has no manifest" in ready.json()["reason"]
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).status_code == 503
        register_model_version(region, "resilience-late", "1", model_files)
        wait_for(lambda: client.get("/ready").status_code == 200, 5, "ready after registration")
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).json()["predictions"] == [0]


def test_a_corrupted_store_copy_stops_serving_until_restored(region, model_files):
    store = store_for(region)
    manifest = register_model_version(region, "resilience-verify", "1", model_files)
    key = manifest.key("model.pkl")
    verify_interval = 1.0
    catalogue = load_catalogue()
    app = create_app(catalogue, REGION, "resilience-verify", "1", reload_interval=0.2, verify_interval=verify_interval)
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
        corrupted = bytearray(model_files["model.pkl"])
        corrupted[len(corrupted) // 2] ^= 0xFF
        store.put_bytes(key, bytes(corrupted))
        # one verification interval, plus the time one verification takes to read the files
        wait_for(lambda: client.get("/ready").status_code == 503, verify_interval + 1.0, "not ready")
        reason = client.get("/ready").json()["reason"]
        expected_sha = next(f.sha256 for f in manifest.files if f.path == "model.pkl")
        assert "model.pkl" in reason and expected_sha in reason, reason
        assert hashlib.sha256(corrupted).hexdigest() in reason, reason
        predict = client.post("/predict", json={"instances": [IRIS_SETOSA]})
        assert predict.status_code == 503 and predict.json()["detail"] == reason
        assert gauge(client.get("/metrics").text, "mlp_model_loaded") == 0
        assert client.get("/health").status_code == 200

        store.put_bytes(key, model_files["model.pkl"])
        wait_for(lambda: client.get("/ready").status_code == 200, 2, "ready again after the restore")
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).json()["predictions"] == [0]


def test_a_version_replaced_consistently_is_served_as_replaced(region, model_files):
    """New files with a matching new manifest are a verified copy: the service switches to it, staying ready."""
    first = register_model_version(region, "resilience-replaced", "1", model_files)
    with TestClient(create_app(load_catalogue(), REGION, "resilience-replaced", "1", **FAST)) as client:
        assert client.get("/ready").json()["sha256"] == first.total_sha256
        second = register_model_version(region, "resilience-replaced", "1", {**model_files, "model_card.json": b"{}"})
        wait_for(lambda: client.get("/ready").json().get("sha256") == second.total_sha256, 2, "the new copy served")


def test_metrics_expose_utilisation_and_verification(region, model_files):
    register_model_version(region, "resilience-metrics", "1", model_files)
    before = time.time()
    app = create_app(load_catalogue(), REGION, "resilience-metrics", "1", capacity=4, **FAST)
    with TestClient(app) as client:
        for _ in range(3):
            assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).status_code == 200
        text = client.get("/metrics").text
        labels = {"region": REGION, "model": "resilience-metrics", "version": "1"}
        served = {s.name: s.value for s in metric_samples(text) if s.labels == labels}
        assert served["mlp_serving_inflight_requests"] == 0
        assert served["mlp_serving_capacity"] == 4
        assert served["mlp_predict_requests_total"] == 3
        assert served["mlp_predict_latency_seconds_count"] == 3
        assert "# TYPE mlp_serving_inflight_requests gauge" in text
        assert utilisation_from_metrics(text) == 0.0  # the health probes read the same text
        first_verified = gauge(text, "mlp_model_last_verified_timestamp_seconds")
        assert before <= first_verified <= time.time()
        wait_for(
            lambda: gauge(client.get("/metrics").text, "mlp_model_last_verified_timestamp_seconds") > first_verified,
            2,
            "re-verification",
        )


def test_verification_can_be_disabled(region, model_files):
    register_model_version(region, "resilience-noverify", "1", model_files)
    app = create_app(load_catalogue(), REGION, "resilience-noverify", "1", reload_interval=0.2, verify_interval=0)
    with TestClient(app) as client:
        first_verified = gauge(client.get("/metrics").text, "mlp_model_last_verified_timestamp_seconds")
        assert first_verified > 0
        time.sleep(0.6)
        assert gauge(client.get("/metrics").text, "mlp_model_last_verified_timestamp_seconds") == first_verified


def test_bad_settings_are_refused(local_clouds):
    for settings in ({"reload_interval": 0}, {"verify_interval": -1}, {"capacity": 0}):
        with pytest.raises(ValueError):
            create_app(load_catalogue(), REGION, "resilience-any", "1", **settings)


def test_serving_process_waits_for_its_version(region, model_files, tmp_path):
    """``python -m include.serving`` with the new flags: up before its version exists, ready once it does."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "include.serving", "--region", REGION, "--model", "resilience-process"]
    command += ["--version", "1", "--port", str(port), "--reload-interval", "0.2", "--verify-interval", "0.5"]
    command += ["--capacity", "8"]
    log = tmp_path / "serving.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    try:
        with httpx.Client(base_url=base, timeout=2) as client:

            def status(path: str) -> int | None:
                try:
                    return client.get(path).status_code
                except httpx.TransportError:
                    assert process.poll() is None, log.read_text()
                    return None

            wait_for(lambda: status("/health") == 200, 30, "the process to answer")
            ready = client.get("/ready")
            assert ready.status_code == 503 and "has no manifest" in ready.json()["reason"]
            register_model_version(region, "resilience-process", "1", model_files)
            wait_for(lambda: status("/ready") == 200, 5, "ready after registration")
            assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).json()["predictions"] == [0]
            assert gauge(client.get("/metrics").text, "mlp_serving_capacity") == 8
    finally:
        process.terminate()
        process.wait(10)  # uvicorn shuts down gracefully, then re-raises SIGTERM: the exit status is -15
        assert "Traceback" not in log.read_text(), log.read_text()
