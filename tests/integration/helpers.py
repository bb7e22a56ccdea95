"""Helpers for running whole DAGs with ``dag.test()``."""

from __future__ import annotations

from tests.conftest import DAGS_FOLDER


def parse_dag(file_name: str, dag_id: str):
    """A freshly parsed DAG: ``dag.test(run_conf=...)`` leaves the conf on the DAG object, so reuse none."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER / file_name)).dags[dag_id]


def task_states(dag_run) -> dict[str, str]:
    """``{"task[map_index]": state}`` of a finished run."""
    return {
        ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti.state for ti in dag_run.get_task_instances()
    }
