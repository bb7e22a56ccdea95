"""The regional model-serving service against a real region store (the emulators): it serves only a model
whose files match the manifest's SHA-256."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from include.catalogue import load_catalogue
from include.clouds.objectstore import store_for
from include.health.probes import metric_samples
from include.replication.replicate import register_model_version
from include.serving.app import create_app
from localdev.demo import demo_model_files

pytestmark = pytest.mark.integration
IRIS_SETOSA = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def served_region(local_clouds):
    region = load_catalogue().region("gcp-europe-west1")
    register_model_version(region, "serving-test", "1", demo_model_files())
    return region


def test_serves_a_verified_model(served_region):
    with TestClient(create_app(load_catalogue(), served_region.name, "serving-test", "1")) as client:
        assert client.get("/health").json()["status"] == "alive"
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        response = client.post("/predict", json={"instances": [IRIS_SETOSA, [6.7, 3.0, 5.2, 2.3]]})
        assert response.status_code == 200
        assert response.json()["predictions"] == [0, 2]
        assert client.post("/predict", json={"instances": [[1.0]]}).status_code == 422
        labels = {"region": "gcp-europe-west1", "model": "serving-test", "version": "1"}
        samples = {s.name: s for s in metric_samples(client.get("/metrics").text) if s.labels == labels}
        assert samples["mlp_predict_requests_total"].value == 2
        assert samples["mlp_predict_errors_total"].value == 1
        assert samples["mlp_predict_latency_seconds_count"].value == 2
        assert samples["mlp_model_loaded"].value == 1


def test_refuses_a_model_whose_bytes_changed(served_region):
    """A stored model altered after registration is not loaded: /ready says why, /predict answers 503."""
    store = store_for(served_region)
    register_model_version(served_region, "serving-tampered", "1", demo_model_files())
    key = "models/serving-tampered/1/model.pkl"
    tampered = bytearray(store.get_bytes(key))
    tampered[-2] ^= 0x01
    store.put_bytes(key, bytes(tampered))
    with TestClient(create_app(load_catalogue(), served_region.name, "serving-tampered", "1")) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "model.pkl in gcp-europe-west1 has SHA-256" in ready.json()["reason"]
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).status_code == 503
        assert client.get("/health").status_code == 200


def test_not_ready_without_the_version(served_region):
    with TestClient(create_app(load_catalogue(), served_region.name, "never-registered", "9")) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and "has no manifest" in ready.json()["reason"]
