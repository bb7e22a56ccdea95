"""The replication DAG run whole with ``dag.test()`` against the three local regions."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from include.catalogue import load_catalogue
from include.clouds.objectstore import store_for
from include.replication.manifest import manifest_key
from include.replication.replicate import read_manifest, register_model_version
from include.replication.rollout import read_pointer
from include.replication.status import StatusStore
from tests.integration.helpers import parse_dag, task_states

pytestmark = pytest.mark.integration


@pytest.fixture
def replication_dag():
    return parse_dag("model_replication.py", "model_replication")


def model_files(seed: str, weights_mib: int = 3) -> dict[str, bytes]:
    return {
        "weights.bin": os.urandom(weights_mib * 2**20 + 17),
        "config.json": f'{{"seed": "{seed}"}}'.encode(),
        "tokenizer/vocab.txt": b"a\nb\nc\n" * 100,
    }


def test_multi_file_model_fans_out_to_both_clouds(local_clouds, airflow_db, replication_dag):
    catalogue = load_catalogue()
    files = model_files("fan-out")
    manifest = register_model_version(catalogue.primary, "fraud-detector", "1", files)

    dag_run = replication_dag.test(run_conf={"model": "fraud-detector", "version": "1"})

    assert dag_run.state == "success", task_states(dag_run)
    assert task_states(dag_run) == {
        "plan": "success",
        "copy[0]": "success",  # one item per version, with both targets
        "verify[0]": "success",
        "summary": "success",
    }
    for target in ("gcp-europe-west1", "azure-eastus"):
        store = store_for(catalogue.region(target))
        assert read_manifest(store, "fraud-detector", "1") == manifest
        for path, data in files.items():
            landed = store.get_bytes(f"models/fraud-detector/1/{path}")
            assert hashlib.sha256(landed).hexdigest() == hashlib.sha256(data).hexdigest()
        expected = sorted([*(manifest.key(path) for path in files), "models/fraud-detector/1/_manifest.json"])
        assert sorted(store.list_keys("models/fraud-detector/1/")) == expected, "part objects left behind"
    for region in catalogue.regions:  # every region now serves the version
        pointer = read_pointer(store_for(region), "fraud-detector")
        assert (pointer.version, pointer.manifest_sha256, pointer.set_by) == ("1", manifest.total_sha256, "replication")
    rows = StatusStore.from_connection("mlp_state").rows("fraud-detector", "1")
    assert {(row.region, row.state, row.sha256) for row in rows} == {
        ("gcp-europe-west1", "verified", manifest.total_sha256),
        ("azure-eastus", "verified", manifest.total_sha256),
    }


def test_audit_finds_and_repairs_corruption_at_rest(local_clouds, airflow_db, replication_dag):
    """Bytes changed in a stored replica are found by the audit's full read-back and repaired from the source."""
    catalogue = load_catalogue()
    files = model_files("audit", weights_mib=1)
    register_model_version(catalogue.primary, "audited", "1", files)
    assert replication_dag.test(run_conf={"model": "audited", "version": "1"}).state == "success"
    azure = store_for(catalogue.region("azure-eastus"))
    key = "models/audited/1/weights.bin"
    tampered = bytearray(azure.get_bytes(key))
    tampered[1000] ^= 0xFF
    azure.put_bytes(key, bytes(tampered), azure.head(key).metadata)  # same claimed SHA-256, different bytes

    dag_run = parse_dag("replication_audit.py", "replication_audit").test()

    assert dag_run.state == "success", task_states(dag_run)
    assert azure.get_bytes(key) == files["weights.bin"]
    row = next(r for r in StatusStore.from_connection("mlp_state").rows("audited", "1") if r.region == "azure-eastus")
    assert row.state == "verified" and "audit repaired a corrupt copy: weights.bin" in row.message


def test_a_copy_the_audit_completes_is_rolled_out_as_replication_would(local_clouds, airflow_db):
    """The audit reaches a version before its replication event does: it copies the missing replicas and moves
    every region's rollout pointer, so the replication run that follows, finding them published, leaves no
    region without the version (seen on the local platform, where both start together)."""
    catalogue = load_catalogue()
    manifest = register_model_version(catalogue.primary, "audited-first", "1", model_files("audit-first", 1))

    dag_run = parse_dag("replication_audit.py", "replication_audit").test()

    assert dag_run.state == "success", task_states(dag_run)
    for region in catalogue.regions:
        pointer = read_pointer(store_for(region), "audited-first")
        assert (pointer.version, pointer.manifest_sha256) == ("1", manifest.total_sha256), region.name


def test_unknown_conf_field_fails_the_run_naming_it(local_clouds, airflow_db, replication_dag):
    dag_run = replication_dag.test(run_conf={"modle": "fraud-detector", "version": "1"})
    assert dag_run.state == "failed"
    assert task_states(dag_run)["plan"] == "failed"


def test_replication_run_for_an_unregistered_version_fails_and_records_why(local_clouds, airflow_db, replication_dag):
    """The DAG run for a version that was never registered: plan rejects it (recorded ``failed`` with the
    manifest it looked for, nothing copied) and the summary fails the run."""
    model = f"dag-missing-{uuid.uuid4().hex[:10]}"
    catalogue = load_catalogue()
    dag_run = replication_dag.test(run_conf={"model": model, "version": "1"})

    states = task_states(dag_run)
    url = store_for(catalogue.primary).url(manifest_key(model, "1"))
    rows = StatusStore.from_connection(catalogue.replication.state_connection).rows(model, "1")
    assert {row.region for row in rows} == {"gcp-europe-west1", "azure-eastus"}
    for row in rows:
        assert row.state == "failed"
        assert url in row.message
    assert states["plan"] == "success"
    assert states["copy"] == states["verify"] == "skipped", states  # mapped over nothing
    assert states["summary"] == "failed", states
    assert dag_run.state == "failed", states
