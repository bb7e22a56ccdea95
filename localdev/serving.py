"""The model-serving service of each region, one process per region on its catalogue endpoint (loopback).

Each serves the demo model from its own region's store (``python -m include.serving``), the version its
region's rollout pointer names: replication moves the pointers once a version is verified in a region, and a
service with no pointer yet answers ``/ready`` 503 and loads the version as soon as the pointer names it. Each
trusts the public keys of the state folder's ``trusted-keys`` directory (``localdev.demo.trusted_keys_dir``),
and accepts the bearer token of the state folder's ``serving-tokens`` (``token_file``: one random token, made
once, mode 600), which the connections of ``serving_connection_env`` hand to the health probes and the cost
sampler.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from include.catalogue import Catalogue
from localdev.processes import ProcessTable, StartupError, ensure_ports_free

# Requests/s per token locally: every local client (the probes, the cost sampler, the load test's users) shares
# the one token, so the default limit (``include.serving.guard.Limits``) would throttle the load test.
LOCAL_RATE_LIMIT = 5000


def serving_name(region: str) -> str:
    """The process-table name of a region's serving process."""
    return f"serving-{region}"


def token_file(state_dir: Path) -> Path:
    """The serving processes' token file in the state folder (``include.serving.auth.ensure_token_file`` makes it)."""
    return state_dir / "serving-tokens"


def serving_connection_env(catalogue: Catalogue, token: str) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` of every region's ``connections.serving``: a ``generic`` connection whose password is
    ``token``."""
    conn_ids = {region.connections.serving for region in catalogue.regions if region.connections.serving}
    connection = json.dumps({"conn_type": "generic", "password": token})
    return {f"AIRFLOW_CONN_{conn_id.upper()}": connection for conn_id in sorted(conn_ids)}


def serving_commands(catalogue: Catalogue, model: str, trusted_keys: Path, tokens: Path) -> dict[str, list[str]]:
    """The command line of each region's serving process, on its endpoint's port, trusting ``trusted_keys`` and
    accepting the tokens of the token file ``tokens``."""
    commands = {}
    for region in catalogue.regions:
        url = urlsplit(region.serving_endpoint)
        port = url.port or (443 if url.scheme == "https" else 80)
        commands[serving_name(region.name)] = [
            sys.executable,
            "-m",
            "include.serving",
            "--region",
            region.name,
            "--model",
            model,
            "--trusted-keys",
            str(trusted_keys),
            "--token-file",
            str(tokens),
            "--port",
            str(port),
            "--reload-interval",
            "2",
            "--verify-interval",
            "10",
            "--rate-limit",
            str(LOCAL_RATE_LIMIT),
            "--rate-burst",
            str(LOCAL_RATE_LIMIT),
        ]
    return commands


def start_serving(
    table: ProcessTable, catalogue: Catalogue, env: dict[str, str], model: str, trusted_keys: Path, tokens: Path
) -> None:
    """Start every region's serving process and wait until each answers ``/health``."""
    endpoints = {region.name: urlsplit(region.serving_endpoint) for region in catalogue.regions}
    local = {name: url.port for name, url in endpoints.items() if url.hostname in ("127.0.0.1", "localhost")}
    if len(local) != len(endpoints):
        raise StartupError("the local platform serves on loopback: every serving_endpoint must be 127.0.0.1")
    ensure_ports_free(
        {f"{name} serving": port for name, port in local.items()},
        hint="change the serving_endpoint ports in the catalogue",
    )
    for name, argv in serving_commands(catalogue, model, trusted_keys, tokens).items():
        table.start(name, argv, env=env)
    for region in catalogue.regions:
        _wait_alive(table, region)


def restart_serving(
    table: ProcessTable,
    catalogue: Catalogue,
    env: dict[str, str],
    region_name: str,
    model: str,
    trusted_keys: Path,
    tokens: Path,
) -> None:
    """Start one region's serving process again (after ``region-down``) and wait until it answers."""
    region = catalogue.region(region_name)
    argv = serving_commands(catalogue, model, trusted_keys, tokens)[serving_name(region.name)]
    table.start(serving_name(region.name), argv, env)
    _wait_alive(table, region)


def _wait_alive(table: ProcessTable, region) -> None:
    table.wait_until(
        [serving_name(region.name)],
        lambda: http_status(region.serving_endpoint + "/health") == 200,
        timeout=60,
        what=f"the serving service of {region.name}",
    )


def wait_until_ready(catalogue: Catalogue, timeout: float) -> dict[str, str]:
    """Wait until every region answers ``/ready`` 200; return each region's last readiness (or its reason)."""
    deadline = time.monotonic() + timeout
    while True:
        readiness = {region.name: _readiness(region.serving_endpoint) for region in catalogue.regions}
        if all(value == "ready" for value in readiness.values()) or time.monotonic() > deadline:
            return readiness
        time.sleep(1)


def http_status(url: str) -> int | None:
    """The HTTP status ``url`` answers with, or None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _readiness(endpoint: str) -> str:
    try:
        with urllib.request.urlopen(endpoint + "/ready", timeout=2):
            return "ready"
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}").get("reason", f"HTTP {exc.code}")
    except OSError as exc:
        return f"unreachable: {exc}"
