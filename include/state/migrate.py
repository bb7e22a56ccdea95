"""Alembic migrations of the state database: upgrade to head, and the check each store makes before use."""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa

from include.errors import StateSchemaMismatch, StateSchemaMissing

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "mlp_alembic_version"  # never Airflow's own alembic_version, should both share a database
UPGRADE_COMMAND = "python -m include.state upgrade"
PG_SCHEMA_LOCK = 0x6D6C7073  # "mlps": one upgrade or restore at a time per PostgreSQL database


def alembic_config(connection: sa.Connection | None = None):
    """The Alembic configuration of the state database (no ``alembic.ini``); ``connection`` for env.py."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The revision this code's schema is at (the one head of ``migrations/versions``)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: sa.Connection) -> str | None:
    """The revision recorded in the database's ``mlp_alembic_version`` table (None: never migrated)."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()  # noqa: S608 - a constant


def upgrade_state_db(engine_or_url: sa.Engine | str) -> tuple[str | None, str]:
    """Upgrade the state database to head (idempotent); the revisions before and after."""
    from alembic import command

    engine = sa.create_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_SCHEMA_LOCK})
            before = current_revision(connection)
            command.upgrade(alembic_config(connection), "head")
            return before, current_revision(connection)
    finally:
        if engine is not engine_or_url:
            engine.dispose()


def describe_upgrade(before: str | None, after: str) -> str:
    """``at revision <after>`` and whether the upgrade changed anything, for a command's output."""
    change = "already there" if before == after else f"upgraded from {before or 'an empty database'}"
    return f"at revision {after} ({change})"


def require_current_schema(engine: sa.Engine) -> None:
    """Raise ``StateSchemaMissing`` or ``StateSchemaMismatch`` unless the database is at this code's head."""
    with engine.connect() as connection:
        current = current_revision(connection)
    head = head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise StateSchemaMissing(
            f"the state database {where} has no platform schema (no {VERSION_TABLE} table): "
            f"run `{UPGRADE_COMMAND}` with its connection set; tables are not created on the fly"
        )
    from alembic.script import ScriptDirectory

    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current in known:
        raise StateSchemaMismatch(
            f"the state database {where} is at schema revision {current}, this code needs {head}: "
            f"run `{UPGRADE_COMMAND}`"
        )
    raise StateSchemaMismatch(
        f"the state database {where} is at schema revision {current}, which this code does not know "
        f"(its head is {head}): a newer release migrated it; run that release"
    )
