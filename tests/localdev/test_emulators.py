"""Tests of the emulator wiring that start no emulator: connection variables, ports and start-up refusals."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from include.catalogue import load_catalogue
from localdev.emulators import (
    AZURITE_ACCOUNT,
    REPO_ROOT,
    EmulatorPorts,
    connection_env,
    start_emulators,
)
from localdev.processes import ProcessTable, StartupError, free_port

PORTS = EmulatorPorts(moto=1, azurite=2, gcs=3, bigquery=4, cost_management=5)
DATA_DIR = Path("/srv/mlp/data")


@pytest.fixture(scope="module")
def conns() -> dict[str, dict]:
    """connection_env over the shipped catalogue, each value decoded from JSON."""
    return {name: json.loads(value) for name, value in connection_env(load_catalogue(), PORTS, DATA_DIR).items()}


def test_one_variable_per_storage_connection_plus_dns_and_cost_sources(conns):
    """Kubernetes connections are left out: no cluster runs locally."""
    assert sorted(conns) == [
        "AIRFLOW_CONN_AWS_COST",
        "AIRFLOW_CONN_AWS_ROUTE53",
        "AIRFLOW_CONN_AWS_US_WEST_2",
        "AIRFLOW_CONN_AZURE_COST",
        "AIRFLOW_CONN_AZURE_EASTUS",
        "AIRFLOW_CONN_GCP_BILLING",
        "AIRFLOW_CONN_GCP_EUROPE_WEST1",
    ]
    assert not any("K8S" in name for name in conns)


def test_aws_storage_connection(conns):
    conn = conns["AIRFLOW_CONN_AWS_US_WEST_2"]
    assert conn["conn_type"] == "aws"
    assert conn["extra"] == {"endpoint_url": "http://127.0.0.1:1", "region_name": "us-west-2"}


def test_gcp_storage_connection(conns):
    conn = conns["AIRFLOW_CONN_GCP_EUROPE_WEST1"]
    assert conn["conn_type"] == "google_cloud_platform"
    assert conn["extra"]["api_endpoint"] == "http://127.0.0.1:3"


def test_azure_storage_connection(conns):
    conn = conns["AIRFLOW_CONN_AZURE_EASTUS"]
    assert conn["conn_type"] == "wasb"
    assert f"BlobEndpoint=http://127.0.0.1:2/{AZURITE_ACCOUNT};" in conn["extra"]["connection_string"]
    assert f"AccountName={AZURITE_ACCOUNT};" in conn["extra"]["connection_string"]


def test_dns_connection_goes_to_moto(conns):
    conn = conns["AIRFLOW_CONN_AWS_ROUTE53"]
    assert conn["conn_type"] == "aws"
    assert conn["extra"]["endpoint_url"] == "http://127.0.0.1:1"


def test_cost_source_connections_reach_the_stand_ins(conns):
    assert conns["AIRFLOW_CONN_AWS_COST"]["extra"]["endpoint_url"] == "http://127.0.0.1:1"
    assert conns["AIRFLOW_CONN_GCP_BILLING"]["extra"]["api_endpoint"] == "http://127.0.0.1:4"
    azure = conns["AIRFLOW_CONN_AZURE_COST"]
    assert azure["conn_type"] == "azure"
    assert azure["extra"]["management_endpoint"] == "https://127.0.0.1:5"
    assert azure["extra"]["ca_bundle"] == str(DATA_DIR / "cost-management" / "cert.pem")


def test_ports_from_env(monkeypatch):
    monkeypatch.setenv("MLP_MOTO_PORT", "15000")
    monkeypatch.setenv("MLP_AZURITE_PORT", "20000")
    monkeypatch.setenv("MLP_GCS_PORT", "14443")
    monkeypatch.setenv("MLP_BIGQUERY_PORT", "19050")
    monkeypatch.setenv("MLP_COST_MANAGEMENT_PORT", "19060")
    assert EmulatorPorts.from_env() == EmulatorPorts(
        moto=15000, azurite=20000, gcs=14443, bigquery=19050, cost_management=19060
    )


def test_ports_from_env_defaults(monkeypatch):
    for name in ("MLP_MOTO_PORT", "MLP_AZURITE_PORT", "MLP_GCS_PORT", "MLP_BIGQUERY_PORT", "MLP_COST_MANAGEMENT_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert EmulatorPorts.from_env() == EmulatorPorts()


@pytest.mark.skipif(
    shutil.which("node") is None or not (REPO_ROOT / "node_modules" / ".bin" / "azurite-blob").exists(),
    reason="needs Node.js and Azurite installed (make install): the commands are built before ports are checked",
)
def test_taken_port_is_refused_before_anything_starts(tmp_path):
    """A port in use fails start-up with the port, the emulator and the variable to change; nothing is left."""
    table = ProcessTable(tmp_path / "run", tmp_path / "logs")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        ports = EmulatorPorts(
            moto=taken, azurite=free_port(), gcs=free_port(), bigquery=free_port(), cost_management=free_port()
        )
        try:
            with pytest.raises(StartupError) as excinfo:
                start_emulators(table, ports, tmp_path / "data", timeout=5)
        finally:
            table.stop_all()
    message = str(excinfo.value)
    assert f"port {taken} (for moto) is already in use" in message
    assert "MLP_MOTO_PORT" in message
    assert table.names() == []
    assert not list(tmp_path.glob("run/*.pid"))
    assert not (tmp_path / "logs").exists()  # no process was ever started
