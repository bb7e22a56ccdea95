"""The wiring DAG run whole with ``dag.test()`` against the three local regions."""

from __future__ import annotations

import json

import pytest

from include.catalogue import load_catalogue
from localdev.processes import free_port
from tests.integration.helpers import parse_dag, task_states

pytestmark = pytest.mark.integration


@pytest.fixture
def wiring_dag():
    return parse_dag("platform_wiring.py", "platform_wiring")


def test_wiring_dag_reaches_every_region(local_clouds, airflow_db, wiring_dag):
    dag_run = wiring_dag.test()
    regions = [region.name for region in load_catalogue().regions]
    assert dag_run.state == "success", task_states(dag_run)
    assert task_states(dag_run) == {
        "select_regions": "success",
        **{f"probe[{index}]": "success" for index in range(len(regions))},
        "report": "success",
    }
    report = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "report")
    assert report.xcom_pull(task_ids="report") == {"reachable": regions, "unreachable": []}


def test_wiring_dag_checks_only_the_chosen_regions(local_clouds, airflow_db, wiring_dag):
    dag_run = wiring_dag.test(run_conf={"regions": ["gcp-europe-west1"]})
    assert dag_run.state == "success", task_states(dag_run)
    assert task_states(dag_run) == {"select_regions": "success", "probe[0]": "success", "report": "success"}


def test_wiring_dag_refuses_an_unknown_region_before_the_run_exists(local_clouds, airflow_db, wiring_dag):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="^Invalid input for param regions: 'mars-north1' is not one of"):
        wiring_dag.test(run_conf={"regions": ["mars-north1"]})


def test_wiring_dag_reports_an_unreachable_region(local_clouds, airflow_db, wiring_dag, monkeypatch):
    """Azure's connection points at a closed port: its probe fails after retries, the others pass."""
    conn_var = "AIRFLOW_CONN_AZURE_EASTUS"
    conn = json.loads(local_clouds.connections[conn_var])
    closed = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    conn["extra"]["connection_string"] = conn["extra"]["connection_string"].replace(
        local_clouds.ports.azurite_blob_url, closed
    )
    monkeypatch.setenv(conn_var, json.dumps(conn))
    dag_run = wiring_dag.test()
    states = task_states(dag_run)
    assert dag_run.state == "failed"
    assert states["probe[0]"] == states["probe[1]"] == "success"
    assert states["probe[2]"] == "failed"
    assert states["report"] == "failed"
