"""The regional model-serving service against a real region store (the emulators): it serves the version the
region's rollout pointer names, and only one that is signed by a trusted key, matches its manifest file by
file, and is a skops file of trusted types; anything else is refused, never served, with the reason on /ready."""

from __future__ import annotations

import hashlib
import json
import pickle

import pytest
import skops.io
from fastapi.testclient import TestClient

from include.catalogue import load_catalogue
from include.clouds.objectstore import store_for
from include.health.probes import metric_samples
from include.replication.manifest import manifest_key
from include.replication.signing import SigningKey, generate_key_pair
from include.serving.app import create_app
from localdev.demo import demo_model_files, release_keys, trusted_keys_dir
from tests.include.serving.tokens import token_file_in
from tests.integration.releases import catalogue_reporting_to, release

pytestmark = pytest.mark.integration
REGION = "gcp-europe-west1"
IRIS_SETOSA = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def region(local_clouds):
    return load_catalogue().region(REGION)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict:
    """The release key serving trusts, a stranger's key it does not, and the trusted-keys directory."""
    state = tmp_path_factory.mktemp("release")
    stranger, _ = generate_key_pair(state / "stranger", "stranger")
    return {
        "release": release_keys(state),
        "stranger": SigningKey.from_file(stranger),
        "trusted": trusted_keys_dir(state),
    }


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return catalogue_reporting_to(tmp_path_factory.mktemp("catalogue") / "regions.yaml", None)


@pytest.fixture(scope="module")
def model_files() -> dict[str, bytes]:
    return demo_model_files()


def serving(catalogue, keys, model: str) -> TestClient:
    token_file, headers = token_file_in(keys["trusted"].parent)
    app = create_app(catalogue, REGION, model, trusted_keys=keys["trusted"], token_file=token_file, verify_interval=0)
    return TestClient(app, headers=headers)


def test_serves_the_rolled_out_version(region, catalogue, keys, model_files):
    manifest = release(region, "serving-test", "1", model_files, keys["release"])
    with serving(catalogue, keys, "serving-test") as client:
        assert client.get("/health").json()["status"] == "alive"
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.json()
        body = ready.json()
        assert (body["version"], body["sha256"], body["signed_by"]) == ("1", manifest.total_sha256, "local-release-1")
        assert body["rollout"]["version"] == "1" and body["rollout"]["set_by"] == "replication"
        assert body["refused"] is None
        response = client.post("/predict", json={"instances": [IRIS_SETOSA, [6.7, 3.0, 5.2, 2.3]]})
        assert response.status_code == 200
        assert response.json() == {"predictions": [0, 2], "model": "serving-test", "version": "1", "region": REGION}
        assert client.post("/predict", json={"instances": [[1.0]]}).status_code == 422
        labels = {"region": REGION, "model": "serving-test", "version": "1"}
        samples = {s.name: s for s in metric_samples(client.get("/metrics").text) if s.labels == labels}
        assert samples["mlp_predict_requests_total"].value == 2
        assert samples["mlp_predict_errors_total"].value == 1
        assert samples["mlp_predict_latency_seconds_count"].value == 2


def test_not_ready_before_any_rollout(region, catalogue, keys):
    with serving(catalogue, keys, "never-rolled-out") as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert f"no version of never-rolled-out rolled out in {REGION} yet" in ready.json()["reason"]


def flip_a_byte(store, key: str) -> None:
    data = bytearray(store.get_bytes(key))
    data[len(data) // 2] ^= 0xFF
    store.put_bytes(key, bytes(data))


def tampered_model_file(region, model, files, keys):
    manifest = release(region, model, "1", files, keys["release"])
    flip_a_byte(store_for(region), manifest.key("model.skops"))
    expected = next(f.sha256 for f in manifest.files if f.path == "model.skops")
    return [f"model.skops of {model} 1 in {REGION} has SHA-256 ", f"the manifest says {expected}"]


def tampered_manifest(region, model, files, keys):
    """The model file replaced and the manifest edited to match it: the signature no longer matches."""
    manifest = release(region, model, "1", files, keys["release"])
    store = store_for(region)
    replacement = skops.io.dumps(skops.io.loads(files["model.skops"]).set_params(C=0.01))
    store.put_bytes(manifest.key("model.skops"), replacement)
    data = json.loads(store.get_bytes(manifest_key(model, "1")))
    entry = next(f for f in data["files"] if f["path"] == "model.skops")
    entry.update(sha256=hashlib.sha256(replacement).hexdigest(), size=len(replacement))
    store.put_bytes(manifest_key(model, "1"), json.dumps(data).encode())
    return ["by key 'local-release-1' does not match its manifest: the manifest or the signature was altered"]


def signed_by_an_unknown_key(region, model, files, keys):
    release(region, model, "1", files, keys["stranger"])
    return ["is signed by key 'stranger', which serving does not trust (trusted: local-release-1)"]


def unsigned(region, model, files, keys):
    release(region, model, "1", files, None)
    return [f"{model} 1 in {REGION} has no signature (_manifest.sig): serving refuses unsigned versions"]


def a_pickle(region, model, files, keys):
    estimator = skops.io.loads(files["model.skops"])
    release(region, model, "1", {"model.pkl": pickle.dumps(estimator), "model_card.json": b"{}"}, keys["release"])
    return ["holds model.pkl: pickle files run code when loaded", "skops.io.dump(estimator, 'model.skops')"]


def a_pickle_named_skops(region, model, files, keys):
    estimator = skops.io.loads(files["model.skops"])
    release(region, model, "1", {"model.skops": pickle.dumps(estimator)}, keys["release"])
    return ["model.skops of", "is a pickle, not a skops file", "skops.io.dump(estimator, 'model.skops')"]


def an_untrusted_type(region, model, files, keys):
    release(region, model, "1", {"model.skops": skops.io.dumps({"hook": eval})}, keys["release"])
    return ["holds types serving does not trust: builtins.eval"]


@pytest.mark.parametrize(
    "make_bad_version",
    [
        tampered_model_file,
        tampered_manifest,
        signed_by_an_unknown_key,
        unsigned,
        a_pickle,
        a_pickle_named_skops,
        an_untrusted_type,
    ],
)
def test_refuses_and_never_serves(region, catalogue, keys, model_files, make_bad_version):
    model = f"serving-{make_bad_version.__name__.replace('_', '-')}"
    expected = make_bad_version(region, model, model_files, keys)
    with serving(catalogue, keys, model) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        body = ready.json()
        for part in expected:
            assert part in body["reason"], body
        assert body["refused"]["version"] == "1" and body["refused"]["reason"] == body["reason"]
        predict = client.post("/predict", json={"instances": [IRIS_SETOSA]})
        assert predict.status_code == 503 and predict.json()["detail"] == body["reason"]
        samples = metric_samples(client.get("/metrics").text)
        assert [s.name for s in samples if s.name == "mlp_model_info"] == []
        assert [s.labels["version"] for s in samples if s.name == "mlp_model_refused"] == ["1"]
        assert client.get("/health").status_code == 200


def test_trusted_keys_must_be_given_as_a_directory_of_public_keys(catalogue, tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        create_app(catalogue, REGION, "any", trusted_keys=tmp_path / "missing", token_file=token_file_in(tmp_path)[0])
    with pytest.raises(ValueError, match="no trusted keys"):
        create_app(catalogue, REGION, "any", trusted_keys=tmp_path, token_file=token_file_in(tmp_path.parent)[0])
