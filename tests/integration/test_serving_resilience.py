"""The serving service keeps in step with its region's store (the emulators): it follows the rollout pointer,
switching versions without a gap, keeps the old version when the new one is refused, unloads a version whose
file changed at rest (reporting it once) and serves it again once restored, and re-verifies by HEADs only,
re-reading nothing that did not change; /metrics carries what the health probes read."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest
from fastapi.testclient import TestClient

from include.catalogue import REPO_ROOT, load_catalogue
from include.clouds.objectstore import store_for
from include.health.probes import metric_samples, utilisation_from_metrics
from include.replication.rollout import pointer_key
from include.replication.signing import sign_version
from include.serving.app import create_app
from include.serving.guard import Limits
from localdev.demo import demo_model_files, release_keys, trusted_keys_dir
from localdev.processes import free_port
from tests.include.serving.tokens import token_file_in
from tests.integration.releases import catalogue_reporting_to, release

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


def wait_for_verifications(client: TestClient, count: int) -> None:
    """Wait until the served version has been re-verified ``count`` more times (``verified_at`` advanced)."""
    seen = {client.get("/ready").json()["verified_at"]}

    def verified_again() -> bool:
        seen.add(client.get("/ready").json()["verified_at"])
        return len(seen) > count

    wait_for(verified_again, 10, f"{count} re-verifications")


class CountingStore:
    """The region's real store, counting the bytes read from each key (every other call passes through)."""

    def __init__(self, store):
        self.store = store
        self.bytes_read: Counter[str] = Counter()

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def get_bytes(self, key: str) -> bytes:
        data = self.store.get_bytes(key)
        self.bytes_read[key] += len(data)
        return data

    def read_stream(self, key: str, chunk_size: int):
        for chunk in self.store.read_stream(key, chunk_size):
            self.bytes_read[key] += len(chunk)
            yield chunk


@pytest.fixture(scope="module")
def region(local_clouds):
    return load_catalogue().region(REGION)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict:
    state = tmp_path_factory.mktemp("release")
    return {"release": release_keys(state), "trusted": trusted_keys_dir(state)}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return catalogue_reporting_to(tmp_path_factory.mktemp("catalogue") / "regions.yaml", None)


@pytest.fixture(scope="module")
def model_files() -> dict[str, bytes]:
    return demo_model_files()


def serving(catalogue, keys, model: str, **options) -> TestClient:
    token_file, headers = token_file_in(keys["trusted"].parent)
    app = create_app(
        catalogue, REGION, model, trusted_keys=keys["trusted"], token_file=token_file, **{**FAST, **options}
    )
    return TestClient(app, headers=headers)


def test_becomes_ready_once_a_version_is_rolled_out(region, catalogue, keys, model_files):
    with serving(catalogue, keys, "resilience-late") as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and f"rolled out in {REGION} yet" in ready.json()["reason"]
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).status_code == 503
        release(region, "resilience-late", "1", model_files, keys["release"])
        wait_for(lambda: client.get("/ready").status_code == 200, 5, "ready after the rollout")
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).json()["predictions"] == [0]


def test_follows_the_pointer_to_a_new_version_without_a_gap(region, catalogue, keys, model_files):
    release(region, "resilience-switch", "1", model_files, keys["release"])
    unlimited = Limits(rate=1e6, burst=10**6)  # the client below predicts as fast as it can: no 429 wanted here
    with serving(catalogue, keys, "resilience-switch", limits=unlimited) as client:
        assert client.get("/ready").json()["version"] == "1"
        answers, stop = [], threading.Event()

        def keep_predicting():
            while not stop.is_set():
                response = client.post("/predict", json={"instances": [IRIS_SETOSA]})
                answers.append((response.status_code, response.json().get("version")))

        predicting = threading.Thread(target=keep_predicting)
        predicting.start()
        try:
            second = release(region, "resilience-switch", "2", model_files, keys["release"])
            wait_for(lambda: client.get("/ready").json()["version"] == "2", 5, "version 2 served")
            wait_for(lambda: answers[-1][1] == "2", 2, "answers from version 2")
        finally:
            stop.set()
            predicting.join()
        assert {status for status, _ in answers} == {200}, answers  # never unready during the switch
        versions = [version for _, version in answers]
        assert versions == sorted(versions) and set(versions) == {"1", "2"}  # every answer names its version
        ready = client.get("/ready").json()
        assert (ready["sha256"], ready["rollout"]["version"], ready["refused"]) == (second.total_sha256, "2", None)
        info = [s for s in metric_samples(client.get("/metrics").text) if s.name == "mlp_model_info"]
        assert [s.labels["version"] for s in info] == ["2"]


def test_a_refused_new_version_leaves_the_old_one_serving(region, catalogue, keys, model_files):
    release(region, "resilience-refused", "1", model_files, keys["release"])
    with serving(catalogue, keys, "resilience-refused") as client:
        assert client.get("/ready").json()["version"] == "1"
        release(region, "resilience-refused", "2", model_files, key=None)  # rolled out, but unsigned
        wait_for(lambda: client.get("/ready").json()["refused"] is not None, 5, "version 2 refused")
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["version"] == "1"
        assert ready.json()["rollout"]["version"] == "2"
        refused = ready.json()["refused"]
        assert refused["version"] == "2" and "has no signature (_manifest.sig)" in refused["reason"], refused
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).json()["version"] == "1"
        text = client.get("/metrics").text
        assert [s.labels["version"] for s in metric_samples(text) if s.name == "mlp_model_refused"] == ["2"]
        assert [s.labels["version"] for s in metric_samples(text) if s.name == "mlp_model_info"] == ["1"]

        sign_version(store_for(region), [], "resilience-refused", "2", keys["release"])  # the release step signs
        wait_for(lambda: client.get("/ready").json()["version"] == "2", 5, "version 2 served once signed")
        assert client.get("/ready").json()["refused"] is None


def test_a_file_changed_at_rest_is_unloaded_reported_once_and_served_again_once_restored(
    region, keys, model_files, tmp_path
):
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    sqs = SqsHook(aws_conn_id=load_catalogue().events.connection).conn
    queue_url = sqs.create_queue(QueueName=f"serving-reports-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    catalogue = catalogue_reporting_to(tmp_path / "regions.yaml", queue_url)
    manifest = release(region, "resilience-verify", "1", model_files, keys["release"])
    store, key = store_for(region), manifest.key("model.skops")
    with serving(catalogue, keys, "resilience-verify", verify_interval=1.0) as client:
        assert client.get("/ready").status_code == 200
        corrupted = bytearray(model_files["model.skops"])
        corrupted[len(corrupted) // 2] ^= 0xFF
        store.put_bytes(key, bytes(corrupted))
        # one verification interval, plus the time one verification takes
        wait_for(lambda: client.get("/ready").status_code == 503, 2.5, "unloaded")
        reason = client.get("/ready").json()["reason"]
        expected_sha = next(f.sha256 for f in manifest.files if f.path == "model.skops")
        actual_sha = hashlib.sha256(corrupted).hexdigest()
        assert f"model.skops of resilience-verify 1 in {REGION} has SHA-256 {actual_sha}" in reason, reason
        assert f"the manifest says {expected_sha}" in reason, reason
        predict = client.post("/predict", json={"instances": [IRIS_SETOSA]})
        assert predict.status_code == 503 and predict.json()["detail"] == reason
        assert gauge(client.get("/metrics").text, "mlp_model_loaded") == 0
        time.sleep(2.5)  # several more intervals: the same bad copy is not reported again
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        reports = [json.loads(message["Body"]) for message in received.get("Messages", [])]
        assert [(r["kind"], r["model"], r["version"], r["region"], r["path"]) for r in reports] == [
            ("replica_corrupt", "resilience-verify", "1", REGION, "model.skops")
        ]
        assert (reports[0]["expected_sha256"], reports[0]["actual_sha256"]) == (expected_sha, actual_sha)

        store.put_bytes(key, model_files["model.skops"])  # the audit's repair
        wait_for(lambda: client.get("/ready").status_code == 200, 2, "ready again after the repair")
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).json()["predictions"] == [0]


def test_reverification_reads_only_what_changed(region, catalogue, keys, model_files):
    """A HEAD per object each interval; a file is read (and re-hashed) again only once its ETag changed."""
    weights = os.urandom(4 * 2**20)
    manifest = release(region, "resilience-reads", "1", {**model_files, "weights.bin": weights}, keys["release"])
    store = CountingStore(store_for(region))
    token_file, headers = token_file_in(keys["trusted"].parent)
    app = create_app(
        catalogue, REGION, "resilience-reads", trusted_keys=keys["trusted"], token_file=token_file, store=store, **FAST
    )
    with TestClient(app, headers=headers) as client:
        assert client.get("/ready").status_code == 200
        loaded = dict(store.bytes_read)
        assert loaded[manifest.key("weights.bin")] == len(weights)  # the load read every file once
        store.bytes_read.clear()

        wait_for_verifications(client, 3)
        assert set(store.bytes_read) == {pointer_key("resilience-reads")}, store.bytes_read  # the pointer only

        store.bytes_read.clear()
        card = manifest.key("model_card.json")
        store.put_bytes(card, model_files["model_card.json"])  # same bytes, written again: a new ETag
        wait_for_verifications(client, 2)
        assert store.bytes_read[card] == len(model_files["model_card.json"])  # re-hashed once
        assert store.bytes_read[manifest.key("weights.bin")] == store.bytes_read[manifest.key("model.skops")] == 0
        assert client.get("/ready").status_code == 200


def test_metrics_expose_utilisation_and_verification(region, catalogue, keys, model_files):
    release(region, "resilience-metrics", "1", model_files, keys["release"])
    before = time.time()
    with serving(catalogue, keys, "resilience-metrics", capacity=4) as client:
        for _ in range(3):
            assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).status_code == 200
        text = client.get("/metrics").text
        model_labels = {"region": REGION, "model": "resilience-metrics"}
        served = {s.name: s.value for s in metric_samples(text) if s.labels == model_labels}
        assert served["mlp_serving_inflight_requests"] == 0
        assert served["mlp_serving_capacity"] == 4
        answered = {s.name: s.value for s in metric_samples(text) if s.labels == model_labels | {"version": "1"}}
        assert answered["mlp_predict_requests_total"] == 3
        assert answered["mlp_predict_latency_seconds_count"] == 3
        assert "# TYPE mlp_serving_inflight_requests gauge" in text
        assert utilisation_from_metrics(text) == 0.0  # the health probes read the same text
        first_verified = gauge(text, "mlp_model_last_verified_timestamp_seconds")
        assert before <= first_verified <= time.time()
        wait_for(
            lambda: gauge(client.get("/metrics").text, "mlp_model_last_verified_timestamp_seconds") > first_verified,
            2,
            "re-verification",
        )


def test_verification_can_be_disabled(region, catalogue, keys, model_files):
    release(region, "resilience-noverify", "1", model_files, keys["release"])
    with serving(catalogue, keys, "resilience-noverify", verify_interval=0) as client:
        first_verified = gauge(client.get("/metrics").text, "mlp_model_last_verified_timestamp_seconds")
        assert first_verified > 0
        time.sleep(0.6)
        assert gauge(client.get("/metrics").text, "mlp_model_last_verified_timestamp_seconds") == first_verified


def test_bad_settings_are_refused(catalogue, keys):
    token_file, _ = token_file_in(keys["trusted"].parent)
    for settings in ({"reload_interval": 0}, {"verify_interval": -1}, {"capacity": 0}):
        with pytest.raises(ValueError):
            create_app(
                catalogue, REGION, "resilience-any", trusted_keys=keys["trusted"], token_file=token_file, **settings
            )


def test_serving_process_follows_the_pointer(region, keys, model_files, tmp_path):
    """``python -m include.serving`` with no version: up before any rollout, ready once the pointer names one."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "include.serving", "--region", REGION, "--model", "resilience-process"]
    command += ["--trusted-keys", str(keys["trusted"]), "--port", str(port), "--reload-interval", "0.2"]
    token_file, headers = token_file_in(tmp_path)
    command += ["--verify-interval", "0.5", "--capacity", "8", "--token-file", str(token_file)]
    log = tmp_path / "serving.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        with httpx.Client(base_url=base, timeout=2, headers=headers) as client:

            def status(path: str) -> int | None:
                try:
                    return client.get(path).status_code
                except httpx.TransportError:
                    assert process.poll() is None, log.read_text()
                    return None

            wait_for(lambda: status("/health") == 200, 30, "the process to answer")
            ready = client.get("/ready")
            assert ready.status_code == 503 and f"rolled out in {REGION} yet" in ready.json()["reason"]
            release(region, "resilience-process", "1", model_files, keys["release"])
            wait_for(lambda: status("/ready") == 200, 5, "ready after the rollout")
            assert client.post("/predict", json={"instances": [IRIS_SETOSA]}).json()["version"] == "1"
            assert gauge(client.get("/metrics").text, "mlp_serving_capacity") == 8
    finally:
        process.terminate()
        process.wait(10)  # uvicorn shuts down gracefully, then re-raises SIGTERM: the exit status is -15
        assert "Traceback" not in log.read_text(), log.read_text()


def test_serving_process_refuses_to_start_without_trusted_keys(tmp_path):
    command = [sys.executable, "-m", "include.serving", "--region", REGION, "--model", "any"]
    command += ["--token-file", str(token_file_in(tmp_path / "tokens")[0])]
    (tmp_path / "keys").mkdir()
    result = subprocess.run(
        [*command, "--trusted-keys", str(tmp_path / "keys")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "no trusted keys (*.pub) in" in result.stderr


def test_serving_process_refuses_to_start_without_a_token_file(keys, tmp_path):
    """Safe by default: no token file, an empty one or a short token stops the process, saying which."""
    command = [sys.executable, "-m", "include.serving", "--region", REGION, "--model", "any"]
    command += ["--trusted-keys", str(keys["trusted"])]

    def refusal(*extra: str) -> str:
        result = subprocess.run([*command, *extra], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        return result.stderr

    assert "the following arguments are required: --token-file" in refusal()
    assert f"cannot read the token file {tmp_path / 'missing'}: No such file" in refusal(
        "--token-file", str(tmp_path / "missing")
    )
    (tmp_path / "empty").write_text("\n\n")
    assert "holds no token (one token a line)" in refusal("--token-file", str(tmp_path / "empty"))
    (tmp_path / "short").write_text("a-long-enough-first-token-0123456789\nshort\n")
    stderr = refusal("--token-file", str(tmp_path / "short"))
    assert "line 2 of the token file" in stderr and "at least 16 characters" in stderr
    assert "a-long-enough" not in stderr  # a token never appears in a message
