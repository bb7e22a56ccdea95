"""Every DAG file imports cleanly, fast, without credentials or network, and follows the house rules."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import DAGS_FOLDER

DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))
MAX_PARSE_SECONDS = 1.0


class NetworkUsed(AssertionError):
    """A DAG file tried to open a network connection while being parsed."""


@pytest.fixture(scope="module")
def dagbag():
    """All DAG files parsed as the dag-processor does, with every outgoing connection refused."""
    from airflow.dag_processing.dagbag import DagBag

    def refuse(self, address, *args, **kwargs):
        raise NetworkUsed(f"a DAG file opened a connection to {address} at parse time")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        return DagBag(dag_folder=str(DAGS_FOLDER))


def test_dags_folder_has_dag_files():
    assert DAG_FILES, f"no DAG files found in {DAGS_FOLDER}"


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}


def test_every_dag_file_defines_a_dag(dagbag):
    files_with_dags = {dag.fileloc for dag in dagbag.dags.values()}
    assert {str(path) for path in DAG_FILES} <= files_with_dags


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parse_time_under_one_second(dagbag, path):
    stat = next(s for s in dagbag.dagbag_stats if s.file.endswith(path.name))
    seconds = stat.duration.total_seconds()
    print(f"{path.name}: parsed in {seconds * 1000:.0f} ms")
    assert seconds < MAX_PARSE_SECONDS, f"{path.name} took {seconds:.2f} s to parse"


def test_every_dag_has_tags_owner_and_retries(dagbag):
    problems = []
    for dag_id, dag in dagbag.dags.items():
        if not dag.tags:
            problems.append(f"{dag_id}: no tags")
        for task in dag.tasks:
            if task.owner in (None, "", "airflow"):
                problems.append(f"{dag_id}.{task.task_id}: no owner")
        if not any(task.retries for task in dag.tasks):
            problems.append(f"{dag_id}: no task retries")
    assert problems == []


def test_no_dag_has_a_cycle(dagbag):
    for dag in dagbag.dags.values():
        dag.check_cycle()  # raises AirflowDagCycleException on a cycle
