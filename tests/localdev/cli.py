"""Run ``python -m localdev`` as a user would, isolated in its own state folder and ports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from localdev.processes import free_port
from tests.conftest import REPO_ROOT


def catalogue_on_free_ports(path: Path) -> Path:
    """A copy of the local catalogue, at ``path``, whose serving endpoints are on free loopback ports."""
    data = yaml.safe_load((REPO_ROOT / "config" / "regions.yaml").read_text())
    for region in data["regions"]:
        region["serving_endpoint"] = f"http://127.0.0.1:{free_port()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def isolated_env(state_dir: Path, **overrides: str) -> dict[str, str]:
    """The caller's environment without Airflow settings, with a private state folder and free ports (the
    emulators', Airflow's, and the serving endpoints' in a catalogue copy next to the state folder)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "MLP_"))}
    env |= {
        "MLP_REGION_CATALOGUE": str(catalogue_on_free_ports(state_dir.parent / f"{state_dir.name}-regions.yaml")),
        "MLP_STATE_DIR": str(state_dir),
        "MLP_MOTO_PORT": str(free_port()),
        "MLP_AZURITE_PORT": str(free_port()),
        "MLP_GCS_PORT": str(free_port()),
        "MLP_BIGQUERY_PORT": str(free_port()),
        "MLP_COST_MANAGEMENT_PORT": str(free_port()),
        "MLP_AIRFLOW_PORT": str(free_port()),
    }
    return env | overrides


def localdev(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localdev", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
