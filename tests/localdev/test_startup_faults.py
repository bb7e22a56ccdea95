"""``python -m localdev up`` refuses bad input and faults with a message that says what to do, and leaves
nothing running."""

from __future__ import annotations

import socket

import pytest

from include.catalogue import DEFAULT_CATALOGUE
from localdev.processes import ProcessTable
from tests.localdev.cli import isolated_env, localdev


def assert_nothing_running(state_dir):
    table = ProcessTable(state_dir / "run", state_dir / "logs")
    assert [name for name in table.names() if table.pid(name)] == []


def test_wrong_catalogue_entry(tmp_path):
    catalogue = tmp_path / "regions.yaml"
    catalogue.write_text(DEFAULT_CATALOGUE.read_text().replace("provider: gcp\n", "provider: gcs\n"))
    result = localdev(isolated_env(tmp_path / "state", MLP_REGION_CATALOGUE=str(catalogue)), "up")
    assert result.returncode == 1
    assert (
        "regions[1] (gcp-europe-west1).provider: Input should be 'aws', 'gcp' or 'azure' (got 'gcs')" in result.stderr
    )
    assert_nothing_running(tmp_path / "state")


def test_missing_nodejs(tmp_path):
    result = localdev(isolated_env(tmp_path / "state", PATH=str(tmp_path)), "up")
    assert result.returncode == 1
    assert "Node.js is missing" in result.stderr and "apt-get install nodejs npm" in result.stderr
    assert_nothing_running(tmp_path / "state")


def test_port_already_taken(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = localdev(isolated_env(tmp_path / "state", MLP_AIRFLOW_PORT=str(port)), "up")
    assert result.returncode == 1
    assert f"port {port} (for the Airflow API server) is already in use" in result.stderr
    assert "MLP_AIRFLOW_PORT" in result.stderr
    assert_nothing_running(tmp_path / "state")


def test_port_that_is_not_a_port(tmp_path):
    result = localdev(isolated_env(tmp_path / "state", MLP_GCS_PORT="70000"), "up")
    assert result.returncode == 1
    assert "MLP_GCS_PORT must be a TCP port number from 1 to 65535, not '70000'" in result.stderr
    assert_nothing_running(tmp_path / "state")


@pytest.mark.integration
def test_emulator_that_does_not_come_up(tmp_path):
    """Node.js refuses to start Azurite: start-up stops, names it, shows its log, and stops the others."""
    env = isolated_env(tmp_path / "state", NODE_OPTIONS="--no-such-node-option")
    result = localdev(env, "up", timeout=120)
    assert result.returncode == 1
    assert "emulator azurite: azurite exited during start-up" in result.stderr
    assert "--no-such-node-option is not allowed in NODE_OPTIONS" in result.stderr  # the tail of its log
    assert "stopped what had started:" in result.stderr
    assert_nothing_running(tmp_path / "state")
