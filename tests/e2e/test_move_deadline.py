"""The move budget's DeadlineAlert under a real scheduler: a run still going past
``failover.move_budget_seconds`` is alerted to the webhook of ``failover.notify_connection``, and a run that
ends within its budget is not.

The DAG is a stand-in for failover_moves with the same ``deadline=move_deadline(catalogue)``: one task that
sleeps as long as its run is told to. Making a real failover outlast its budget on purpose would need a
region to stall in the middle of a move; what is tested here is the part the scheduler owns (the deadline
is created when the run is queued, missed, and its callback run by the executor with a task's connections);
``test_the_move_deadline_serialises_and_its_callback_alerts_the_run_and_its_budget``
(tests/integration/test_failover_dags.py) checks that failover_moves carries this deadline.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

from include.catalogue import catalogue_path
from localdev.airflow_local import ADMIN_USER, AirflowSettings, airflow_env, local_secrets, start_airflow
from localdev.api import AirflowClient
from localdev.processes import ProcessTable, free_port
from tests.conftest import alert_receiver

pytestmark = pytest.mark.e2e

DAG_ID = "move_budget_probe"
BUDGET_SECONDS = 12  # above the pauses of a gradual move with 1 s step pauses (8 s), as the catalogue requires
NOTIFY_CONN_ID = "mlp_deadline_alerts"

PROBE_DAG = f'''
"""A stand-in for failover_moves: its deadline, and a task that takes as long as the run says."""

import time
from datetime import datetime

from airflow.sdk import Param, dag, task

from include.airflow.deadlines import move_deadline
from include.catalogue import load_catalogue


@dag(
    dag_id="{DAG_ID}",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["test"],
    params={{"seconds": Param(1, type="number", minimum=0)}},
    deadline=move_deadline(load_catalogue()),
)
def move_budget_probe():
    @task(retries=0)
    def take_seconds(params=None):
        time.sleep(params["seconds"])

    take_seconds()


move_budget_probe()
'''


def test_a_run_past_its_move_budget_is_alerted_and_one_within_it_is_not(tmp_path):
    catalogue = yaml.safe_load(catalogue_path().read_text())
    catalogue["failover"] |= {
        "step_pause_seconds": 1,
        "move_budget_seconds": BUDGET_SECONDS,
        "notify_connection": NOTIFY_CONN_ID,
    }
    catalogue_file = tmp_path / "regions.yaml"
    catalogue_file.write_text(yaml.safe_dump(catalogue))
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(PROBE_DAG)

    server, alerts = alert_receiver()
    webhook = {"conn_type": "http", "host": "127.0.0.1", "port": server.server_port, "schema": "http"}
    settings = AirflowSettings(state_dir=tmp_path / "platform", api_port=free_port())
    env = airflow_env(settings, {f"AIRFLOW_CONN_{NOTIFY_CONN_ID.upper()}": json.dumps(webhook)}, catalogue_file)
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    table = ProcessTable(settings.state_dir / "run", settings.state_dir / "logs")
    try:
        start_airflow(table, settings, env)
        client = AirflowClient(settings.api_url, ADMIN_USER, local_secrets(settings.state_dir)["admin_password"])
        client.wait_for_dag(DAG_ID)
        within = client.trigger(DAG_ID, {"seconds": 1})
        assert client.wait_for_run(DAG_ID, within) == "success"
        past = client.trigger(DAG_ID, {"seconds": BUDGET_SECONDS + 12})
        started = time.monotonic()
        assert client.wait_for_run(DAG_ID, past) == "success"  # the alert does not stop the run
        deadline = time.monotonic() + 30  # the callback may still be on its way
        while not alerts and time.monotonic() < deadline:
            time.sleep(1)
        print(f"run past its budget: {time.monotonic() - started:.1f} s; alerts: {alerts}")
    finally:
        table.stop_all()
        server.shutdown()

    assert [alert["run_id"] for alert in alerts] == [past], alerts
    alert = alerts[0]
    assert alert["kind"] == "deadline_missed" and alert["severity"] == "critical" and alert["dag_id"] == DAG_ID
    assert alert["budget_seconds"] == BUDGET_SECONDS and alert["elapsed_seconds"] >= BUDGET_SECONDS
    assert past in alert["text"] and "failover.move_budget_seconds" in alert["text"]
