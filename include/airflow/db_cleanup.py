"""Purging old rows from Airflow's metadata database with ``airflow db clean`` (the airflow_db_cleanup DAG).

Airflow 3 hides the metadata database from task processes (their ``sql_alchemy_conn`` is a blocked URL), so
the command gets it from the connection ``airflow_db``: the official Helm chart sets ``AIRFLOW_CONN_AIRFLOW_DB``
itself, the local platform and Docker Compose set it next to ``sql_alchemy_conn``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta

METADATA_CONNECTION = "airflow_db"
CLEAN_TIMEOUT = timedelta(hours=1)


def clean_before(logical_date: datetime, retention_days: int) -> datetime:
    """The cutoff: records older than ``retention_days`` before the run's logical date are purged."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, not {retention_days}")
    return logical_date - timedelta(days=retention_days)


def clean_command(before: datetime) -> list[str]:
    """``airflow db clean`` up to ``before``, unprompted, without archive tables, failing if a table fails."""
    return [
        sys.executable,
        "-m",
        "airflow",
        "db",
        "clean",
        "--clean-before-timestamp",
        before.isoformat(),
        "--yes",
        "--skip-archive",
        "--error-on-cleanup-failure",  # else a table that could not be cleaned still exits 0
    ]


def metadata_db_url(conn_id: str = METADATA_CONNECTION) -> str:
    """The SQLAlchemy URL (with its password) of the metadata database, from the connection ``conn_id``."""
    from airflow.sdk.bases.hook import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise RuntimeError(
            f"no connection {conn_id!r}: Airflow 3 hides the metadata database from tasks, so `airflow db clean` "
            f"needs it as a connection; set AIRFLOW_CONN_{conn_id.upper()} to the metadata database"
        ) from None
    engine = connection.get_hook().get_sqlalchemy_engine()  # builds the URL, connects to nothing
    try:
        return engine.url.render_as_string(hide_password=False)
    finally:
        engine.dispose()


def clean_metadata_db(logical_date: datetime, retention_days: int) -> str:
    """Run ``airflow db clean`` for the cutoff of ``logical_date`` and ``retention_days``; the cutoff (ISO 8601)."""
    before = clean_before(logical_date, retention_days)
    command = clean_command(before)
    env = {key: value for key, value in os.environ.items() if key != "AIRFLOW__CORE__SQL_ALCHEMY_CONN"}
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_db_url()
    print(f"purging metadata older than {before.isoformat()} ({retention_days} days): {' '.join(command[1:])}")
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=CLEAN_TIMEOUT.total_seconds(), check=False
    )
    print(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"`airflow db clean` exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return before.isoformat()
