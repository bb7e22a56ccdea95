"""Rollout pointers in the three local regions: promotion rules, rollback, the ``model_rollback`` DAG and command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from include.catalogue import load_catalogue
from include.clouds.objectstore import store_for
from include.errors import RollbackRefused
from include.replication.manifest import manifest_key
from include.replication.replicate import register_model_version
from include.replication.rollout import promote, read_pointer, rollback
from tests.conftest import REPO_ROOT
from tests.integration.helpers import parse_dag, task_states

pytestmark = pytest.mark.integration


def register_everywhere(model: str, version: str) -> dict:
    """The version registered (files, checksums, manifest) in every region, as replication would leave it."""
    catalogue = load_catalogue()
    return {
        region.name: register_model_version(region, model, version, {"model.bin": os.urandom(4096)})
        for region in catalogue.regions
    }


@pytest.mark.parametrize("region_name", ["aws-us-west-2", "gcp-europe-west1", "azure-eastus"])
def test_promote_moves_forward_only(local_clouds, region_name):
    region = load_catalogue().region(region_name)
    store = store_for(region)
    model = f"forward-{region.provider}"
    v1 = register_model_version(region, model, "1", {"model.bin": b"one"})
    v2 = register_model_version(region, model, "2", {"model.bin": b"two"})

    assert read_pointer(store, model) is None
    assert promote(store, v2, "verified").version == "2"
    assert promote(store, v1, "a late retry of v1") is None  # registered before v2: no step back
    assert promote(store, v2, "verified again") is None  # already current: nothing written
    pointer = read_pointer(store, model)
    assert (pointer.version, pointer.manifest_sha256, pointer.set_by) == ("2", v2.total_sha256, "replication")


def test_rollback_pins_until_a_newer_registration(local_clouds):
    catalogue = load_catalogue()
    model = "pinned"
    first = register_everywhere(model, "1")
    second = register_everywhere(model, "2")
    stores = [store_for(region) for region in catalogue.regions]
    for store in stores:
        promote(store, second[store.region.name], "verified")

    pointers = rollback(stores, model, "1", "v2 misclassifies")

    assert [p.version for p in pointers] == ["1", "1", "1"]
    for store in stores:
        pointer = read_pointer(store, model)
        assert (pointer.version, pointer.set_by, pointer.reason) == ("1", "rollback", "v2 misclassifies")
        assert pointer.manifest_sha256 == first[store.region.name].total_sha256
        assert promote(store, second[store.region.name], "audit repaired v2") is None  # the rollback holds
    third = register_everywhere(model, "3")  # registered after the rollback: rolls out
    assert all(promote(store, third[store.region.name], "verified").version == "3" for store in stores)


def test_rollback_refused_in_one_region_moves_no_pointer(local_clouds):
    catalogue = load_catalogue()
    model = "half-replicated"
    register_everywhere(model, "1")
    second = register_everywhere(model, "2")
    stores = [store_for(region) for region in catalogue.regions]
    for store in stores:
        promote(store, second[store.region.name], "verified")
    azure = store_for(catalogue.region("azure-eastus"))
    azure.delete(manifest_key(model, "1"))  # v1 is no finished replica in Azure any more

    with pytest.raises(RollbackRefused, match="1 is not a finished replica in azure-eastus: no manifest there"):
        rollback(stores, model, "1", "try")

    assert {read_pointer(store, model).version for store in stores} == {"2"}


def test_rollback_dag_moves_the_pointers_it_is_given(local_clouds, airflow_db):
    catalogue = load_catalogue()
    model = "rollback-dag"
    register_everywhere(model, "1")
    second = register_everywhere(model, "2")
    for region in catalogue.regions:
        promote(store_for(region), second[region.name], "verified")

    dag_run = parse_dag("model_rollback.py", "model_rollback").test(
        run_conf={"model": model, "version": "1", "regions": ["gcp-europe-west1"], "reason": "bad v2 in europe"}
    )

    assert dag_run.state == "success", task_states(dag_run)
    versions = {region.name: read_pointer(store_for(region), model).version for region in catalogue.regions}
    assert versions == {"aws-us-west-2": "2", "gcp-europe-west1": "1", "azure-eastus": "2"}
    reason = read_pointer(store_for(catalogue.region("gcp-europe-west1")), model).reason
    assert reason.startswith("bad v2 in europe (rollback by manual__")


def test_rollback_dag_fails_naming_a_version_that_is_not_there(local_clouds, airflow_db):
    dag_run = parse_dag("model_rollback.py", "model_rollback").test(
        run_conf={"model": "rollback-dag", "version": "9", "regions": [], "reason": "typo"}
    )
    assert dag_run.state == "failed"
    assert task_states(dag_run) == {"roll_back": "failed"}  # RollbackRefused is permanent: no retry


def test_rollback_command(local_clouds):
    catalogue = load_catalogue()
    model = "rollback-cli"
    register_everywhere(model, "1")
    second = register_everywhere(model, "2")
    for region in catalogue.regions:
        promote(store_for(region), second[region.name], "verified")
    command = [sys.executable, "-m", "include.replication", "rollback", "--model", model, "--version", "1"]

    done = subprocess.run(command, cwd=REPO_ROOT, env=os.environ, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.count(f"{model} points at version 1") == 3, done.stdout
    assert {read_pointer(store_for(region), model).version for region in catalogue.regions} == {"1"}
    refused = subprocess.run([*command[:-1], "7"], cwd=REPO_ROOT, env=os.environ, capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert refused.returncode == 1 and "7 is not a finished replica in aws-us-west-2" in refused.stderr
