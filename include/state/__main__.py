"""The state database's schema: ``python -m include.state upgrade | current | revision -m MESSAGE``.

``upgrade`` migrates the database of the catalogue's state connection (``replication.state_connection``, an
``AIRFLOW_CONN_*`` in the environment) or of ``--url`` to the latest revision; running it again changes
nothing. ``current`` prints its revision. ``revision`` writes a new revision file from the difference
between ``include/state/schema.py`` and the latest revision (for developers; review it before committing).
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import sqlalchemy as sa

from include.errors import CatalogueError


def _engine(args: argparse.Namespace) -> sa.Engine:
    if args.url:
        return sa.create_engine(args.url)
    from include.catalogue import load_catalogue
    from include.state.engine import state_engine

    return state_engine(args.conn_id or load_catalogue().replication.state_connection)


def cmd_upgrade(args: argparse.Namespace) -> int:
    from include.state.migrate import describe_upgrade, upgrade_state_db

    engine = _engine(args)
    try:
        before, after = upgrade_state_db(engine)
    finally:
        engine.dispose()
    print(f"state database {engine.url.render_as_string(hide_password=True)}: {describe_upgrade(before, after)}")
    return 0


def cmd_current(args: argparse.Namespace) -> int:
    from include.state.migrate import current_revision, head_revision

    engine = _engine(args)
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
    finally:
        engine.dispose()
    print(f"{current or 'none (never migrated)'} (this code's head: {head_revision()})")
    return 0 if current == head_revision() else 1


def cmd_revision(args: argparse.Namespace) -> int:
    """Autogenerate against a scratch SQLite database at head; ids count up (0001, 0002, ...)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from include.state.migrate import alembic_config, upgrade_state_db

    rev_id = f"{len(list(ScriptDirectory.from_config(alembic_config()).walk_revisions())) + 1:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        engine = sa.create_engine(f"sqlite:///{scratch}/head.db")
        try:
            upgrade_state_db(engine)
            with engine.begin() as connection:
                command.revision(alembic_config(connection), args.message, autogenerate=True, rev_id=rev_id)
        finally:
            engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.state", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("upgrade", cmd_upgrade, "create or upgrade the state database's tables (idempotent)"),
        ("current", cmd_current, "print the database's schema revision (exit 1 unless it is the latest)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--conn-id", help="Airflow connection id (default: the catalogue's state_connection)")
        command.add_argument("--url", help="a SQLAlchemy URL instead of an Airflow connection")
        command.set_defaults(func=func)
    revision = commands.add_parser("revision", help="write a new revision from the changes to schema.py")
    revision.add_argument("-m", "--message", required=True)
    revision.set_defaults(func=cmd_revision)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CatalogueError, sa.exc.OperationalError) as exc:  # no catalogue, or the database is unreachable
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
