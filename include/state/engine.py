"""The platform's own SQL database (replication status, failover state), reached through an Airflow connection."""

from __future__ import annotations

import sqlalchemy as sa


def state_engine(conn_id: str) -> sa.Engine:
    """The SQLAlchemy engine behind ``conn_id`` (sqlite or postgres), through the provider's hook."""
    from airflow.sdk.bases.hook import BaseHook

    return BaseHook.get_connection(conn_id).get_hook().get_sqlalchemy_engine()
