"""Fixtures shared by the unit tests of ``include/``: a throwaway database on the machine's PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

# psycopg 3, the driver of the postgres provider's engine (the platform reaches the state database through it)
POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture(scope="session")
def postgres_server() -> sa.Engine:
    """The local PostgreSQL server (trust auth, user postgres), in autocommit for CREATE/DROP DATABASE."""
    engine = sa.create_engine(
        f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 (user postgres) is unreachable: {str(exc).splitlines()[0]}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_server: sa.Engine):
    """A throwaway database of its own, dropped afterwards."""
    name = f"mlp_state_test_{uuid.uuid4().hex[:12]}"
    with postgres_server.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with postgres_server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
