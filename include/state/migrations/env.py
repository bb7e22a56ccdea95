"""Alembic's entry point for the state database: online only, on the connection include.state.migrate passes."""

from __future__ import annotations

from alembic import context

from include.state.migrate import VERSION_TABLE
from include.state.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run the state database's migrations with `python -m include.state upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
)
with context.begin_transaction():
    context.run_migrations()
