"""Helpers for running whole DAGs with ``dag.test()``."""

from __future__ import annotations

from tests.conftest import DAGS_FOLDER


def parse_dag(file_name: str, dag_id: str):
    """A freshly parsed DAG: ``dag.test(run_conf=...)`` leaves the conf on the DAG object, so reuse none."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER / file_name)).dags[dag_id]


def without_deadline(dag):
    """``dag`` without its DeadlineAlerts, for ``dag.test()``: Airflow 3.3.2's ``dag.test()`` hands its run loop the
    alerts as serialised dicts where ``DagRun.update_state`` expects their database ids, and fails when the run
    succeeds. The scheduler stores them first (the end-to-end test runs failover_moves with its deadline), and
    ``test_the_move_deadline_serialises_and_its_callback_alerts_the_run_and_its_budget`` tests the alert itself."""
    dag.deadline = None
    return dag


def task_states(dag_run) -> dict[str, str]:
    """``{"task[map_index]": state}`` of a finished run."""
    return {
        ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti.state for ti in dag_run.get_task_instances()
    }
