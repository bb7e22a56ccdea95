"""Airflow's API server alone on a free loopback port, as the local platform runs it, for tests of the REST API and
the UI plugins that need no scheduler: its metadata database migrated (SQLite) and this repository's DAGs
serialised into it with ``airflow dags reserialize``, so runs can be made, though none is executed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

from localdev.airflow_local import (
    ADMIN_USER,
    AirflowSettings,
    airflow_env,
    component_commands,
    health,
    local_secrets,
    prepare_database,
)
from localdev.processes import ProcessTable, free_port


@contextmanager
def api_server_alone(
    state_dir: Path,
    connections: dict[str, str],
    catalogue_path: Path,
    users: dict[str, tuple[str, str]] | None = None,
) -> Generator[AirflowSettings]:
    """The running server's settings; ``admin`` (password in ``local_secrets(state_dir)``) and each of ``users``,
    name -> (simple auth manager role, password), may log in."""
    settings = AirflowSettings(state_dir=state_dir, api_port=free_port())
    env = airflow_env(settings, connections, catalogue_path)
    if users:
        roles = [f"{ADMIN_USER}:admin"] + [f"{name}:{role}" for name, (role, _) in users.items()]
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = ",".join(roles)
        passwords = {ADMIN_USER: local_secrets(state_dir)["admin_password"]}
        passwords |= {name: password for name, (_, password) in users.items()}
        Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).write_text(json.dumps(passwords))
    commands = component_commands(settings)
    table = ProcessTable(state_dir / "run", state_dir / "logs")
    try:
        prepare_database(settings, env)
        airflow = commands["airflow-api-server"][0]
        subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True, timeout=120)
        table.start("airflow-api-server", commands["airflow-api-server"], env, settings.home)
        table.wait_until(
            ["airflow-api-server"],
            lambda: health(settings.api_url)["metadatabase"]["status"] == "healthy",
            timeout=90,
            what="the Airflow API server",
        )
        yield settings
    finally:
        table.stop_all()
