"""Test settings and shared fixtures.

Airflow reads its configuration when first imported, so this module points it at a private home (SQLite,
no example DAGs, this repository's dags/) before any test imports it, and drops cloud connections and
credentials inherited from the caller's shell. The platform's UI plugins come by entry point.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO_ROOT / "dags"

for _name in list(os.environ):
    if _name.startswith(("AIRFLOW_CONN_", "AIRFLOW__", "AWS_ACCESS", "AWS_SECRET", "AWS_SESSION", "AWS_PROFILE")):
        del os.environ[_name]
    elif _name in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "MLP_REGION_CATALOGUE"):
        del os.environ[_name]

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mlp-test-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    }
)


_FAILOVER_FIGURES: list[tuple[str, float]] = []


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    """The timings the chaos tests measured, kept in the test output."""
    if _FAILOVER_FIGURES:
        terminalreporter.section("failover figures (seconds from the fault)")
        for name, value in _FAILOVER_FIGURES:
            terminalreporter.line(f"{name:48} {value:7.2f}")


@pytest.fixture
def failover_figures():
    """Record a measured figure, ``(name, seconds)``, for the summary at the end of the run."""
    return lambda name, value: _FAILOVER_FIGURES.append((name, value))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata database, which ``dag.test()`` needs, with the platform's pools."""
    from localdev.airflow_local import pool_commands

    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True, capture_output=True)
    for command in pool_commands():
        subprocess.run(command, check=True, capture_output=True)
    return _AIRFLOW_HOME


@dataclass
class LocalClouds:
    """The running emulators of one test session."""

    ports: object
    connections: dict[str, str]
    table: object
    data_dir: Path


@pytest.fixture(scope="session")
def local_clouds(tmp_path_factory) -> Iterator[LocalClouds]:
    """moto, Azurite and fake-gcs-server on free loopback ports, provisioned from the catalogue.

    Started once per session; the connections they need are set in this process's environment, as Airflow
    would read them, and removed again at the end.
    """
    from include.catalogue import load_catalogue
    from localdev.airflow_local import AirflowSettings, state_connection_env
    from localdev.emulators import EmulatorPorts, connection_env, start_emulators
    from localdev.processes import ProcessTable, free_port
    from localdev.provision import provision

    state = tmp_path_factory.mktemp("clouds")
    table = ProcessTable(state / "run", state / "logs")
    ports = EmulatorPorts(
        moto=free_port(), azurite=free_port(), gcs=free_port(), bigquery=free_port(), cost_management=free_port()
    )
    catalogue = load_catalogue()
    connections = connection_env(catalogue, ports, state / "data") | state_connection_env(
        catalogue, AirflowSettings(state_dir=state)
    )
    os.environ.update(connections)
    try:
        start_emulators(table, ports, state / "data")
        provision(catalogue)
        yield LocalClouds(ports=ports, connections=connections, table=table, data_dir=state / "data")
    finally:
        table.stop_all()
        for name in connections:
            os.environ.pop(name, None)


def alert_receiver() -> tuple[ThreadingHTTPServer, list[dict]]:
    """A webhook on a free loopback port, serving from a thread, and the JSON bodies POSTed to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received
