"""The metadata clean-up DAG: its form, its command, and a whole run with ``dag.test()`` on the test database."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import pytest

from include.airflow.db_cleanup import clean_before, clean_command, metadata_db_url
from tests.integration.helpers import parse_dag, task_states


@pytest.fixture
def cleanup_dag():
    return parse_dag("airflow_db_cleanup.py", "airflow_db_cleanup")


def test_runs_daily_without_catchup(cleanup_dag):
    assert cleanup_dag.schedule == "@daily" and cleanup_dag.catchup is False
    assert cleanup_dag.max_active_runs == 1
    assert all(task.retries >= 1 for task in cleanup_dag.tasks)


def test_retention_days_is_a_positive_integer_of_30_by_default(cleanup_dag):
    from airflow.sdk.exceptions import ParamValidationError

    param = cleanup_dag.params.get_param("retention_days")
    assert param.schema["type"] == "integer" and param.schema["minimum"] == 1 and param.description
    assert param.resolve() == 30 and param.resolve(7) == 7
    for bad in (0, -3, "ten"):
        with pytest.raises(ParamValidationError):
            param.resolve(bad)


def test_the_command_purges_up_to_the_logical_date_minus_the_retention():
    logical_date = datetime(2026, 3, 31, tzinfo=UTC)
    before = clean_before(logical_date, 30)
    assert before == datetime(2026, 3, 1, tzinfo=UTC)
    assert clean_command(before) == [
        sys.executable,
        "-m",
        "airflow",
        "db",
        "clean",
        "--clean-before-timestamp",
        "2026-03-01T00:00:00+00:00",
        "--yes",
        "--skip-archive",
        "--error-on-cleanup-failure",
    ]
    with pytest.raises(ValueError, match="at least 1"):
        clean_before(logical_date, 0)


def test_without_the_airflow_db_connection_it_says_what_to_set(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_AIRFLOW_DB", raising=False)
    with pytest.raises(RuntimeError, match="set AIRFLOW_CONN_AIRFLOW_DB to the metadata database"):
        metadata_db_url()


def test_a_run_deletes_what_is_older_than_the_retention_and_keeps_the_rest(airflow_db, cleanup_dag, monkeypatch):
    """As on a worker: the task process's own ``sql_alchemy_conn`` is blocked (Airflow 3), so the command
    reaches the metadata database through the ``airflow_db`` connection."""
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    database = {"conn_type": "sqlite", "host": str(airflow_db / "airflow.db")}
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_DB", json.dumps(database))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-db-not-allowed:///")  # what tasks see
    now = datetime.now(UTC)
    with create_session() as session:
        for event, age in (("mlp-cleanup-old", 40), ("mlp-cleanup-recent", 20)):
            session.add(log := Log(event=event))
            log.dttm = now - timedelta(days=age)  # Log() stamps the current time

    dag_run = cleanup_dag.test(logical_date=now, run_conf={"retention_days": 30})

    assert task_states(dag_run) == {"clean": "success"}, task_states(dag_run)
    with create_session() as session:
        left = {event for (event,) in session.query(Log.event).filter(Log.event.like("mlp-cleanup-%"))}
    assert left == {"mlp-cleanup-recent"}
