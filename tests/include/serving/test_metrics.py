"""The serving service's ``/metrics``, read the way its consumers read it (``include.health.probes``): a
latency histogram and counters per version that answered, the served version in ``mlp_model_info`` (and only
it, across a switch), process-wide gauges, and the process's metrics. The model comes from an in-memory store,
so no emulator is needed."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST

from include.catalogue import load_catalogue
from include.health.probes import metric_samples, utilisation_from_metrics
from include.replication.signing import SigningKey, generate_key_pair
from include.serving.app import create_app
from localdev.demo import demo_model_files
from tests.include.serving.memory_store import MemoryStore
from tests.include.serving.tokens import token_file_in

REGION = "gcp-europe-west1"
IRIS_SETOSA = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def model_files() -> dict[str, bytes]:
    return demo_model_files()


@pytest.fixture(scope="module")
def release_key(tmp_path_factory) -> tuple[SigningKey, object]:
    """A signing key and the trusted-keys directory holding its public key."""
    directory = tmp_path_factory.mktemp("keys")
    private_path, _ = generate_key_pair(directory / "release", "release-1")
    trusted = directory / "trusted"
    trusted.mkdir()
    (trusted / "release-1.pub").write_bytes((directory / "release" / "release-1.pub").read_bytes())
    return SigningKey.from_file(private_path), trusted


def released(model: str, files: dict[str, bytes], key: SigningKey) -> MemoryStore:
    store = MemoryStore(load_catalogue().region(REGION))
    store.release(model, "1", files, key)
    return store


def serving_client(model: str, store: MemoryStore, trusted, **options) -> TestClient:
    options = {"verify_interval": 0, **options}
    token_file, headers = token_file_in(trusted.parent)
    app = create_app(
        load_catalogue(), REGION, model, trusted_keys=trusted, token_file=token_file, store=store, **options
    )
    return TestClient(app, headers=headers)


def samples_named(text: str, name: str) -> list:
    return [sample for sample in metric_samples(text) if sample.name == name]


def value(text: str, name: str, **labels: str) -> float:
    """The value of the one sample called ``name`` whose labels include ``labels``."""
    [sample] = [s for s in samples_named(text, name) if labels.items() <= s.labels.items()]
    return sample.value


def test_latency_histogram_counts_every_request(model_files, release_key):
    key, trusted = release_key
    with serving_client("metrics-histogram", released("metrics-histogram", model_files, key), trusted) as client:
        before = client.get("/metrics").text
        assert value(before, "mlp_predict_latency_seconds_count", version="1") == 0
        for _ in range(3):
            assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).status_code == 200
        after = client.get("/metrics").text
    assert value(after, "mlp_predict_latency_seconds_count", version="1") == 3
    assert value(after, "mlp_predict_requests_total", version="1") == 3
    assert value(after, "mlp_predict_errors_total", version="1") == 0
    assert value(after, "mlp_predict_latency_seconds_sum", version="1") > 0
    buckets = samples_named(after, "mlp_predict_latency_seconds_bucket")
    assert [b.labels["le"] for b in buckets][-1] == "+Inf"
    assert value(after, "mlp_predict_latency_seconds_bucket", le="+Inf") == 3


def test_series_carry_region_and_model_and_the_served_version_where_it_matters(model_files, release_key):
    key, trusted = release_key
    store = released("metrics-labels", model_files, key)
    with serving_client("metrics-labels", store, trusted, capacity=4) as client:
        answer = client.get("/metrics")
    assert answer.headers["content-type"] == CONTENT_TYPE_LATEST
    served = [s for s in metric_samples(answer.text) if s.name.startswith("mlp_")]
    assert {s.name for s in served} >= {
        "mlp_predict_requests_total",
        "mlp_predict_errors_total",
        "mlp_predict_latency_seconds_count",
        "mlp_model_info",
        "mlp_model_loaded",
        "mlp_serving_inflight_requests",
        "mlp_serving_capacity",
        "mlp_model_last_verified_timestamp_seconds",
    }
    assert all({"region": REGION, "model": "metrics-labels"}.items() <= s.labels.items() for s in served)
    [info] = samples_named(answer.text, "mlp_model_info")
    manifest_sha = store.get_bytes("models/metrics-labels/_current.json").decode()
    assert info.value == 1 and info.labels["version"] == "1" and info.labels["signed_by"] == "release-1"
    assert info.labels["sha256"] in manifest_sha
    assert value(answer.text, "mlp_model_loaded") == 1
    assert "version" not in samples_named(answer.text, "mlp_model_loaded")[0].labels
    assert value(answer.text, "mlp_serving_capacity") == 4
    assert value(answer.text, "mlp_model_last_verified_timestamp_seconds") > 0
    assert utilisation_from_metrics(answer.text) == 0.0


def test_a_version_switch_moves_model_info_and_starts_the_new_versions_series(model_files, release_key):
    key, trusted = release_key
    store = released("metrics-switch", model_files, key)
    with serving_client("metrics-switch", store, trusted, reload_interval=0.05) as client:
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).json()["version"] == "1"
        store.release("metrics-switch", "2", model_files, key)
        deadline = time.monotonic() + 5
        while client.get("/ready").json().get("version") != "2":
            assert time.monotonic() < deadline, client.get("/ready").json()
            time.sleep(0.05)
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).json()["version"] == "2"
        text = client.get("/metrics").text
    assert [s.labels["version"] for s in samples_named(text, "mlp_model_info")] == ["2"]
    assert value(text, "mlp_predict_requests_total", version="1") == 1
    assert value(text, "mlp_predict_requests_total", version="2") == 1
    assert len(samples_named(text, "mlp_serving_inflight_requests")) == 1


def test_process_metrics_are_exported(model_files, release_key):
    key, trusted = release_key
    with serving_client("metrics-process", released("metrics-process", model_files, key), trusted) as client:
        text = client.get("/metrics").text
    assert value(text, "process_cpu_seconds_total") > 0
    assert value(text, "process_resident_memory_bytes") > 0
    assert samples_named(text, "process_cpu_seconds_total")[0].labels == {}


def test_requests_refused_while_not_ready_count_as_errors(release_key):
    _, trusted = release_key
    with serving_client("metrics-missing", MemoryStore(load_catalogue().region(REGION)), trusted) as client:
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).status_code == 503
        text = client.get("/metrics").text
    assert value(text, "mlp_model_loaded") == 0
    assert samples_named(text, "mlp_model_info") == []
    assert value(text, "mlp_model_last_verified_timestamp_seconds") == 0
    assert value(text, "mlp_predict_errors_total", version="") == 1
    assert value(text, "mlp_predict_latency_seconds_count", version="") == 1


def test_a_refused_version_is_exported(model_files, release_key):
    _, trusted = release_key
    unsigned = released("metrics-refused", model_files, key=None)
    with serving_client("metrics-refused", unsigned, trusted) as client:
        text = client.get("/metrics").text
    assert value(text, "mlp_model_refused", version="1") == 1


def test_two_apps_in_one_process_keep_their_own_metrics(model_files, release_key):
    key, trusted = release_key
    first = serving_client("metrics-first", released("metrics-first", model_files, key), trusted)
    second = serving_client("metrics-second", released("metrics-second", model_files, key), trusted)
    with first, second:
        assert first.post("/predict", json={"instances": [IRIS_SETOSA]}).status_code == 200
        first_text, second_text = first.get("/metrics").text, second.get("/metrics").text
    assert value(first_text, "mlp_predict_requests_total", model="metrics-first") == 1
    assert value(second_text, "mlp_predict_requests_total", model="metrics-second") == 0
    assert {s.labels["model"] for s in metric_samples(second_text) if s.name.startswith("mlp_")} == {"metrics-second"}
