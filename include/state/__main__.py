"""The state database's schema and the control plane's backups, from the command line.

``python -m include.state upgrade | current | revision -m MESSAGE | backup --to FILE |
restore --from FILE [--replace] | fetch-backup --region NAME --to FILE | backup-airflow-db --to FILE |
restore-airflow-db --from FILE``.

``upgrade`` migrates the database of the catalogue's state connection (``replication.state_connection``, an
``AIRFLOW_CONN_*`` in the environment) or of ``--url`` to the latest revision; running it again changes
nothing. ``current`` prints its revision. ``revision`` writes a new revision file from the difference
between ``include/state/schema.py`` and the latest revision (for developers; review it before committing).

``backup`` writes every table of the state database to a file (``include/state/backup.py``), ``restore`` loads
one into an empty database (or, with ``--replace``, over one), ``fetch-backup`` downloads the newest hourly
backup from a region's store. ``backup-airflow-db`` and ``restore-airflow-db`` do the same for Airflow's
metadata database (connection ``airflow_db``, or ``--url``) with ``pg_dump -Fc``/``pg_restore`` or SQLite's
online backup; stop Airflow before restoring it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from include.errors import CatalogueError

METADATA_CONNECTION = "airflow_db"  # Airflow's metadata database as a connection (as airflow_db_cleanup uses it)


def _engine(args: argparse.Namespace) -> sa.Engine:
    if args.url:
        return sa.create_engine(args.url)
    from include.catalogue import load_catalogue
    from include.state.engine import state_engine

    return state_engine(args.conn_id or load_catalogue().replication.state_connection)


def _where(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


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


def cmd_backup(args: argparse.Namespace) -> int:
    from include.state.backup import back_up_state

    engine = _engine(args)
    try:
        header = back_up_state(engine, args.to)
    finally:
        engine.dispose()
    rows = sum(header["tables"].values())
    print(
        f"state database {_where(engine)}: {rows} rows of {len(header['tables'])} tables at revision "
        f"{header['revision']} backed up to {args.to} (sha256 {header['sha256'][:16]})"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from include.state.backup import restore_state
    from include.state.migrate import head_revision

    engine = _engine(args)
    try:
        header = restore_state(engine, args.source, replace=args.replace)
    finally:
        engine.dispose()
    counts = ", ".join(f"{name} {count}" for name, count in header["tables"].items())
    print(
        f"state database {_where(engine)}: restored {args.source} (revision {header['revision']}, taken "
        f"{header['created_at']} from {header['source']}), now at revision {head_revision()}: {counts}"
    )
    return 0


def cmd_fetch_backup(args: argparse.Namespace) -> int:
    from include.catalogue import load_catalogue
    from include.state.backup import fetch_backup

    key = fetch_backup(load_catalogue().region(args.region), args.to, args.key)
    print(f"{args.region}: {key} downloaded to {args.to}")
    return 0


def cmd_backup_airflow_db(args: argparse.Namespace) -> int:
    from include.state.backup import back_up_airflow_db

    engine = _engine(args)
    engine.dispose()  # only its URL is needed: pg_dump or SQLite's backup API reads the database
    print(f"{back_up_airflow_db(engine.url, args.to)} written to {args.to}")
    return 0


def cmd_restore_airflow_db(args: argparse.Namespace) -> int:
    from include.state.backup import restore_airflow_db

    engine = _engine(args)
    engine.dispose()
    print(restore_airflow_db(engine.url, args.source))
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
    for name, func, text, conn_id in (
        ("backup", cmd_backup, "write every table of the state database to a file", None),
        ("restore", cmd_restore, "restore a state backup (into an empty database unless --replace)", None),
        ("backup-airflow-db", cmd_backup_airflow_db, "back up Airflow's metadata database", METADATA_CONNECTION),
        ("restore-airflow-db", cmd_restore_airflow_db, "restore Airflow's metadata database", METADATA_CONNECTION),
    ):
        command = commands.add_parser(name, help=text)
        default = conn_id or "the catalogue's state_connection"
        command.add_argument("--conn-id", default=conn_id, help=f"Airflow connection id (default: {default})")
        command.add_argument("--url", help="a SQLAlchemy URL instead of an Airflow connection")
        if name.startswith("backup"):
            command.add_argument("--to", type=Path, required=True, help="the backup file to write")
        else:
            command.add_argument("--from", dest="source", type=Path, required=True, help="the backup file to read")
        if name == "restore":
            command.add_argument("--replace", action="store_true", help="delete the target's rows first")
        command.set_defaults(func=func)
    fetch = commands.add_parser("fetch-backup", help="download the newest hourly state backup from a region")
    fetch.add_argument("--region", required=True, help="a catalogue region that keeps backups")
    fetch.add_argument("--key", help="a backup's object key (default: the newest)")
    fetch.add_argument("--to", type=Path, required=True, help="the file to write")
    fetch.set_defaults(func=cmd_fetch_backup)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CatalogueError, sa.exc.OperationalError) as exc:  # no catalogue, or the database is unreachable
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError, OSError) as exc:  # a refused or failed backup or restore: nothing changed
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
