"""The serving service's ``/metrics``, read the way its consumers read it (``include.health.probes``): a
latency histogram, counters and gauges labelled with the version served, and the process's metrics. The model
comes from an in-memory store, so no emulator is needed."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST

from include.catalogue import load_catalogue
from include.errors import ObjectNotFound
from include.health.probes import metric_samples, utilisation_from_metrics
from include.replication.manifest import Manifest, ModelFile, manifest_key
from include.serving.app import create_app
from localdev.demo import demo_model_files

REGION = "gcp-europe-west1"
IRIS_SETOSA = [5.1, 3.5, 1.4, 0.2]


class MemoryStore:
    """The read side of a region's store (``get_bytes``, ``url``), in memory."""

    def __init__(self, objects: dict[str, bytes] | None = None):
        self.objects = dict(objects or {})

    def url(self, key: str) -> str:
        return f"mem://models/{key}"

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise ObjectNotFound(key) from None


@pytest.fixture(scope="module")
def model_files() -> dict[str, bytes]:
    return demo_model_files()


def store_with(model: str, version: str, files: dict[str, bytes]) -> MemoryStore:
    """A store holding the version's files and its manifest, as ``register_model_version`` writes them."""
    entries = [ModelFile(path, len(data), hashlib.sha256(data).hexdigest()) for path, data in files.items()]
    manifest = Manifest.build(model, version, REGION, entries)
    objects = {manifest.key(path): data for path, data in files.items()}
    objects[manifest_key(model, version)] = manifest.to_json().encode()
    return MemoryStore(objects)


def serving_client(model: str, store: MemoryStore, **options) -> TestClient:
    app = create_app(load_catalogue(), REGION, model, "1", verify_interval=0, **options)
    app.state.serving.store = store
    return TestClient(app)


def samples_named(text: str, name: str) -> list:
    return [sample for sample in metric_samples(text) if sample.name == name]


def value(text: str, name: str, **labels: str) -> float:
    """The value of the one sample called ``name`` whose labels include ``labels``."""
    [sample] = [s for s in samples_named(text, name) if labels.items() <= s.labels.items()]
    return sample.value


def test_latency_histogram_counts_every_request(model_files):
    with serving_client("metrics-histogram", store_with("metrics-histogram", "1", model_files)) as client:
        before = client.get("/metrics").text
        assert value(before, "mlp_predict_latency_seconds_count") == 0
        for _ in range(3):
            assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).status_code == 200
        after = client.get("/metrics").text
    assert value(after, "mlp_predict_latency_seconds_count") == 3
    assert value(after, "mlp_predict_requests_total") == 3
    assert value(after, "mlp_predict_errors_total") == 0
    assert value(after, "mlp_predict_latency_seconds_sum") > 0
    buckets = samples_named(after, "mlp_predict_latency_seconds_bucket")
    assert [b.labels["le"] for b in buckets][-1] == "+Inf"
    assert value(after, "mlp_predict_latency_seconds_bucket", le="+Inf") == 3


def test_every_series_is_labelled_with_the_version_served(model_files):
    with serving_client("metrics-labels", store_with("metrics-labels", "1", model_files), capacity=4) as client:
        answer = client.get("/metrics")
    assert answer.headers["content-type"] == CONTENT_TYPE_LATEST
    labels = {"region": REGION, "model": "metrics-labels", "version": "1"}
    served = [s for s in metric_samples(answer.text) if s.name.startswith("mlp_")]
    assert {s.name for s in served} >= {
        "mlp_predict_requests_total",
        "mlp_predict_errors_total",
        "mlp_predict_latency_seconds_count",
        "mlp_model_loaded",
        "mlp_serving_inflight_requests",
        "mlp_serving_capacity",
        "mlp_model_last_verified_timestamp_seconds",
    }
    assert all(labels.items() <= s.labels.items() for s in served)
    assert value(answer.text, "mlp_model_loaded", **labels) == 1
    assert value(answer.text, "mlp_serving_capacity", **labels) == 4
    assert value(answer.text, "mlp_model_last_verified_timestamp_seconds") > 0
    assert utilisation_from_metrics(answer.text) == 0.0


def test_process_metrics_are_exported(model_files):
    with serving_client("metrics-process", store_with("metrics-process", "1", model_files)) as client:
        text = client.get("/metrics").text
    assert value(text, "process_cpu_seconds_total") > 0
    assert value(text, "process_resident_memory_bytes") > 0
    assert samples_named(text, "process_cpu_seconds_total")[0].labels == {}


def test_requests_refused_while_not_ready_count_as_errors():
    with serving_client("metrics-missing", MemoryStore()) as client:
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).status_code == 503
        text = client.get("/metrics").text
    assert value(text, "mlp_model_loaded") == 0
    assert value(text, "mlp_model_last_verified_timestamp_seconds") == 0
    assert value(text, "mlp_predict_errors_total") == 1
    assert value(text, "mlp_predict_latency_seconds_count") == 1


def test_two_apps_in_one_process_keep_their_own_metrics(model_files):
    first = serving_client("metrics-first", store_with("metrics-first", "1", model_files))
    second = serving_client("metrics-second", store_with("metrics-second", "1", model_files))
    with first, second:
        assert first.post("/predict", json={"instances": [IRIS_SETOSA]}).status_code == 200
        first_text, second_text = first.get("/metrics").text, second.get("/metrics").text
    assert value(first_text, "mlp_predict_requests_total", model="metrics-first") == 1
    assert value(second_text, "mlp_predict_requests_total", model="metrics-second") == 0
    assert {s.labels["model"] for s in metric_samples(second_text) if s.name.startswith("mlp_")} == {"metrics-second"}
