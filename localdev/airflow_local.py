"""Airflow 3 on this machine, every server on 127.0.0.1, in one of two topologies.

- ``embedded`` (default): SQLite and LocalExecutor, the processes ``airflow standalone`` runs (api-server,
  scheduler, dag-processor, triggerer), started one by one because ``standalone`` cannot be told to skip
  the log servers, which would listen on every interface.
- ``production``: PostgreSQL on 127.0.0.1:5432 as metadata database and CeleryExecutor with Redis on
  127.0.0.1:6379 as broker, plus a Celery worker.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from include.catalogue import Catalogue
from localdev.processes import ProcessTable, StartupError, port_from_env

REPO_ROOT = Path(__file__).resolve().parents[1]
ADMIN_USER = "admin"
TOPOLOGIES = ("embedded", "production")


@dataclass(frozen=True)
class AirflowSettings:
    """Where and how the local Airflow runs."""

    state_dir: Path
    api_port: int = 8080
    topology: str = "embedded"
    postgres_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432"
    database: str = "mlp_airflow"
    redis_url: str = "redis://127.0.0.1:6379/0"

    @classmethod
    def from_env(cls, state_dir: Path, topology: str) -> AirflowSettings:
        """Settings from ``MLP_AIRFLOW_PORT``, ``MLP_POSTGRES_URL``, ``MLP_AIRFLOW_DB`` and ``MLP_REDIS_URL``."""
        defaults = cls(state_dir=state_dir)
        return cls(
            state_dir=state_dir,
            topology=topology,
            api_port=port_from_env("MLP_AIRFLOW_PORT", defaults.api_port),
            postgres_url=os.environ.get("MLP_POSTGRES_URL", defaults.postgres_url),
            database=os.environ.get("MLP_AIRFLOW_DB", defaults.database),
            redis_url=os.environ.get("MLP_REDIS_URL", defaults.redis_url),
        )

    @property
    def state_database(self) -> str:
        """PostgreSQL database of the platform's own tables (replication status) in production."""
        return f"{self.database}_state"

    def state_connection(self) -> dict:
        """The replication status store: SQLite in the state folder, or PostgreSQL in production."""
        if self.topology != "production":
            return {"conn_type": "sqlite", "host": str(self.state_dir / "replication-status.db")}
        from sqlalchemy.engine import make_url

        url = make_url(self.postgres_url)
        return {
            "conn_type": "postgres",
            "host": url.host,
            "port": url.port or 5432,
            "login": url.username,
            "password": url.password,
            "schema": self.state_database,
        }

    @property
    def home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def components(self) -> list[str]:
        base = ["airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]
        return base + (["airflow-celery-worker"] if self.topology == "production" else [])


def state_connection_env(catalogue: Catalogue, settings: AirflowSettings) -> dict[str, str]:
    """The ``AIRFLOW_CONN_*`` variable of the catalogue's replication status store."""
    name = f"AIRFLOW_CONN_{catalogue.replication.state_connection.upper()}"
    return {name: json.dumps(settings.state_connection())}


def metadata_connection_env(settings: AirflowSettings) -> dict[str, str]:
    """``AIRFLOW_CONN_AIRFLOW_DB``: the metadata database as a connection, for ``airflow_db_cleanup`` (Airflow 3
    hides ``sql_alchemy_conn`` from tasks; the official Helm chart sets this connection itself)."""
    if settings.topology != "production":
        connection = {"conn_type": "sqlite", "host": str(settings.home / "airflow.db")}
    else:
        from sqlalchemy.engine import make_url

        url = make_url(settings.postgres_url)
        connection = {
            "conn_type": "postgres",
            "host": url.host,
            "port": url.port or 5432,
            "login": url.username,
            "password": url.password,
            "schema": settings.database,
        }
    return {"AIRFLOW_CONN_AIRFLOW_DB": json.dumps(connection)}


def local_secrets(state_dir: Path) -> dict[str, str]:
    """The admin password and signing keys of this local install, made once and kept in the state folder."""
    path = state_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    from cryptography.fernet import Fernet

    values = {
        "admin_password": secrets.token_urlsafe(12),
        "jwt_secret": secrets.token_urlsafe(32),
        "fernet_key": Fernet.generate_key().decode(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def airflow_env(settings: AirflowSettings, connections: dict[str, str], catalogue_path: Path) -> dict[str, str]:
    """The environment of every Airflow process: configuration as ``AIRFLOW__*``, connections as ``AIRFLOW_CONN_*``."""
    keys = local_secrets(settings.state_dir)
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({ADMIN_USER: keys["admin_password"]}))
    env = {
        **os.environ,
        **connections,
        **metadata_connection_env(settings),
        "AIRFLOW_HOME": str(home),
        "MLP_REGION_CATALOGUE": str(catalogue_path),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.api_url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.api_port),
        "AIRFLOW__API__BASE_URL": settings.api_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    }
    if settings.topology == "production":
        env |= {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{settings.postgres_url}/{settings.database}",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": settings.redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{settings.postgres_url}/{settings.database}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        }
    else:
        env |= {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        }
    return env


def _ensure_postgres_database(settings: AirflowSettings, database: str) -> None:
    import psycopg2
    from psycopg2 import sql

    server = settings.postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    try:
        conn = psycopg2.connect(f"{server}/postgres", connect_timeout=5)
    except psycopg2.OperationalError as exc:
        raise StartupError(
            f"PostgreSQL at {server} is not reachable for the production topology: {str(exc).strip()}. "
            "Start it, set MLP_POSTGRES_URL, or use the embedded topology."
        ) from None
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    finally:
        conn.close()


def _check_redis(settings: AirflowSettings) -> None:
    import redis

    try:
        redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise StartupError(
            f"Redis at {settings.redis_url} is not reachable for the production topology ({exc}). "
            "Start it, set MLP_REDIS_URL, or use the embedded topology."
        ) from None


def pool_commands() -> list[list[str]]:
    """``airflow pools set`` for each pool the platform's tasks run in (idempotent)."""
    from include.airflow.defaults import POOLS

    return [[_airflow(), "pools", "set", name, str(slots), text] for name, (slots, text) in POOLS.items()]


def prepare_backends(settings: AirflowSettings) -> None:
    """Production topology: create the metadata and state databases on PostgreSQL and check Redis."""
    if settings.topology == "production":
        _ensure_postgres_database(settings, settings.database)
        _ensure_postgres_database(settings, settings.state_database)
        _check_redis(settings)


def prepare_database(settings: AirflowSettings, env: dict[str, str], paused_dags: tuple[str, ...] = ()) -> None:
    """Create or upgrade the metadata database (``airflow db migrate``), create the platform's pools, and pause
    ``paused_dags`` if an earlier start registered them (a DAG seen for the first time starts as its file says)."""
    log = settings.state_dir / "logs" / "airflow-db-migrate.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        for command in [[_airflow(), "db", "migrate"], *pool_commands()]:
            result = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
            if result.returncode != 0:
                tail = "\n".join("    " + line for line in log.read_text(errors="replace").splitlines()[-15:])
                what = " ".join(command[1:3])
                raise StartupError(f"`airflow {what}` failed (exit {result.returncode}); see {log}:\n{tail}")
        for dag_id in paused_dags:
            subprocess.run([_airflow(), "dags", "pause", dag_id], env=env, stdout=out, stderr=subprocess.STDOUT)


def _airflow() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def component_commands(settings: AirflowSettings) -> dict[str, list[str]]:
    """Command lines of the Airflow servers; ``--skip-serve-logs`` keeps log servers off the network."""
    airflow = _airflow()
    commands = {
        "airflow-api-server": [airflow, "api-server", "--host", "127.0.0.1", "--port", str(settings.api_port)],
        "airflow-scheduler": [airflow, "scheduler", "--skip-serve-logs"],
        "airflow-dag-processor": [airflow, "dag-processor"],
        "airflow-triggerer": [airflow, "triggerer", "--skip-serve-logs"],
        "airflow-celery-worker": [
            airflow,
            "celery",
            "worker",
            "--skip-serve-logs",
            "--concurrency",
            "2",
            "--without-gossip",
            "--without-mingle",
        ],  # fmt: skip
    }
    return {name: commands[name] for name in settings.components}


def health(api_url: str) -> dict:
    """Airflow's own health report (``GET /api/v2/monitor/health``)."""
    with urllib.request.urlopen(f"{api_url}/api/v2/monitor/health", timeout=5) as response:
        return json.load(response)


def _healthy(api_url: str) -> bool:
    report = health(api_url)
    parts = ["metadatabase", "scheduler", "triggerer", "dag_processor"]
    return all(report.get(part, {}).get("status") == "healthy" for part in parts)


def start_airflow(
    table: ProcessTable,
    settings: AirflowSettings,
    env: dict[str, str],
    paused_dags: tuple[str, ...] = (),
    timeout: float = 180,
) -> None:
    """Migrate the database, start every component and wait until Airflow reports all of them healthy."""
    prepare_database(settings, env, paused_dags)
    for name, argv in component_commands(settings).items():
        table.start(name, argv, env=env, cwd=settings.home)
    table.wait_until(
        settings.components,
        lambda: _healthy(settings.api_url),
        timeout=timeout,
        what=f"Airflow ({', '.join(settings.components)})",
    )
