"""Fixtures shared by the integration tests."""

from __future__ import annotations

import gc
import json

import pytest

from tests.conftest import alert_receiver

WEBHOOK_CONN_ID = "mlp_alerts_test"


@pytest.fixture
def webhook(monkeypatch):
    """A webhook receiver on loopback behind the http connection ``WEBHOOK_CONN_ID``: the alerts it received."""
    server, received = alert_receiver()
    conn = {"conn_type": "http", "host": "127.0.0.1", "port": server.server_port, "schema": "http"}
    monkeypatch.setenv(f"AIRFLOW_CONN_{WEBHOOK_CONN_ID.upper()}", json.dumps(conn))
    yield received
    server.shutdown()


@pytest.fixture
def dag_test_keeps_defer_kwargs(monkeypatch):
    """Make ``dag.test()`` resume a deferred task with the kwargs it passed to ``defer()``, as the triggerer does.

    This task SDK's ``dag.test()`` hands a resumed task the trigger's event only (fixed upstream by
    apache/airflow#69942): the kwargs are put back into the task instance's ``next_kwargs`` before it resumes.
    Drop this fixture once the SDK has the fix.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk.execution_time import supervisor
    from airflow.sdk.execution_time.comms import DeferTask
    from airflow.utils.session import create_session

    run_task_in_process = supervisor.run_task_in_process
    deferred_kwargs: dict = {}

    def run_with_defer_kwargs(ti, task):
        if kwargs := deferred_kwargs.pop(ti.id, None):
            with create_session() as session:
                resumed = session.get(TaskInstance, ti.id)
                resumed.next_kwargs = {**kwargs, **(resumed.next_kwargs or {})}
        result = run_task_in_process(ti=ti, task=task)
        if isinstance(result.msg, DeferTask):
            deferred_kwargs[ti.id] = result.msg.next_kwargs
        return result

    monkeypatch.setattr(supervisor, "run_task_in_process", run_with_defer_kwargs)


@pytest.fixture(scope="session")
def chaos_regions(local_clouds, tmp_path_factory):
    """A real serving process per region, each behind a fault proxy (see ``failover_harness``)."""
    from tests.integration.failover_harness import ChaosRegions

    served = ChaosRegions(tmp_path_factory.mktemp("chaos"))
    # This process holds Airflow and three clouds' SDKs; a full garbage collection pauses it for ~200 ms,
    # which the probes it runs would count as the regions' latency. Freeze what exists now out of the GC.
    gc.collect()
    gc.freeze()
    yield served
    served.close()
