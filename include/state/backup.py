"""Backups of the platform's state: the state database as a logical dump, Airflow's metadata database with its
own tools, and the hourly copies the ``platform_backup`` DAG keeps in two regions' object stores.

A state backup is one gzip file of JSON lines, the same whichever database wrote it, restorable into SQLite or
PostgreSQL alike:

- line 1, the header: ``format``, ``format_version``, the schema ``revision`` (Alembic's, ``mlp_alembic_version``),
  ``created_at``, ``source`` (the database's URL, no password), ``tables`` (name -> rows) and ``sha256``;
- then for every table of ``include.state.schema.metadata`` (no table is named here) a line
  ``{"table": ..., "columns": [...]}`` followed by one JSON array per row, in primary-key order.

``sha256`` is the SHA-256 of the header's other fields (canonical JSON, a newline) and the hex SHA-256 of every
line after the header; a restore checks it before it changes anything. Times are ISO 8601 in UTC.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import zlib
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from include.catalogue import Catalogue, Region
from include.errors import BackupInvalid, ChecksumMismatch, RestoreRefused, StateSchemaMismatch
from include.state.migrate import (
    PG_SCHEMA_LOCK,
    alembic_config,
    current_revision,
    head_revision,
    require_current_schema,
)
from include.state.schema import metadata

FORMAT = "mlp-state-backup"
FORMAT_VERSION = 1
BATCH_ROWS = 1000
OBJECT_PREFIX = "control-plane/state/"  # in each backup region's bucket: <prefix><hour>Z.jsonl.gz
_OBJECT_KEY = re.compile(r"^control-plane/state/(\d{4}-\d{2}-\d{2}T\d{2})Z\.jsonl\.gz$")


# Writing and reading a state backup


def _encode(table: str, column: str, value: object) -> object:
    if isinstance(value, datetime):  # SQLite hands back naive datetimes; every time stored is UTC
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{table}.{column}: a {type(value).__name__} value has no JSON form in include/state/backup.py")


def _decode(column: sa.Column, value: object) -> object:
    if isinstance(value, str) and isinstance(column.type, sa.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(value, str) and isinstance(column.type, sa.Date):
        return date.fromisoformat(value)
    return value


def _line(value: object) -> bytes:
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def _write(spool: IO[bytes], body, value: object) -> None:
    """Append ``value`` as one line to ``spool`` and to the running SHA-256 ``body``."""
    line = _line(value)
    spool.write(line)
    body.update(line)


def _checksum(header: dict, body_sha256: str) -> str:
    fields = {key: value for key, value in header.items() if key != "sha256"}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical + b"\n" + body_sha256.encode()).hexdigest()


@contextmanager
def _atomic(path: Path) -> Generator[Path]:
    """A temporary file beside ``path``, renamed over it once the block succeeds (else removed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def back_up_state(engine: sa.Engine, path: Path) -> dict:
    """Write every table of the state database to ``path`` (atomically); return the backup's header.

    The database must be at this code's schema revision. Every table is read in one transaction (REPEATABLE
    READ on PostgreSQL), so the backup is one consistent snapshot.
    """
    require_current_schema(engine)
    counts: dict[str, int] = {}
    body = hashlib.sha256()
    with tempfile.SpooledTemporaryFile(max_size=64 * 2**20) as spool:
        options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
        with engine.connect().execution_options(**options) as conn, conn.begin():
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN")  # pysqlite would run each SELECT outside a transaction
            revision = current_revision(conn)
            for table in metadata.sorted_tables:
                columns = [column.name for column in table.columns]
                _write(spool, body, {"table": table.name, "columns": columns})
                counts[table.name] = 0
                query = sa.select(table).order_by(*table.primary_key.columns)
                for row in conn.execution_options(yield_per=BATCH_ROWS).execute(query):
                    values = zip(columns, row, strict=True)
                    _write(spool, body, [_encode(table.name, name, value) for name, value in values])
                    counts[table.name] += 1
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "revision": revision,
            "created_at": datetime.now(UTC).isoformat(),
            "source": engine.url.render_as_string(hide_password=True),
            "tables": counts,
        }
        header["sha256"] = _checksum(header, body.hexdigest())
        spool.seek(0)
        with _atomic(path) as temporary, gzip.open(temporary, "wb") as out:
            out.write(_line(header))
            shutil.copyfileobj(spool, out)
    return header


def _lines(path: Path) -> Iterator[bytes]:
    if not path.is_file():
        raise FileNotFoundError(f"no backup file at {path}")
    try:
        with gzip.open(path, "rb") as lines:
            yield from lines
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise BackupInvalid(f"{path}: not a readable gzip file ({exc})") from None


def _parse(path: Path, number: int, line: bytes) -> object:
    try:
        return json.loads(line)
    except ValueError:
        raise BackupInvalid(f"{path}: line {number} is not JSON") from None


def read_backup_header(path: Path) -> dict:
    """The header of the backup at ``path`` once its checksum and row counts are verified."""
    lines = _lines(path)
    header = _parse(path, 1, next(lines, b"{}"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupInvalid(f"{path}: not a state backup (its first line has no format {FORMAT!r})")
    if header.get("format_version") != FORMAT_VERSION:
        raise BackupInvalid(f"{path}: backup format version {header.get('format_version')!r}, this code reads 1")
    missing = [key for key in ("revision", "created_at", "tables", "sha256") if key not in header]
    if missing:
        raise BackupInvalid(f"{path}: the header lacks {', '.join(missing)}")
    body, counts, table = hashlib.sha256(), {}, None
    for number, line in enumerate(lines, start=2):
        body.update(line)
        if line.startswith(b"{"):
            table = _parse(path, number, line).get("table")
            counts[table] = 0
        elif table is None:
            raise BackupInvalid(f"{path}: line {number} is a row before any table")
        else:
            counts[table] += 1
    if _checksum(header, body.hexdigest()) != header["sha256"]:
        raise ChecksumMismatch(
            f"{path}: checksum mismatch: the header says sha256 {header['sha256']}, the contents give "
            f"{_checksum(header, body.hexdigest())}; the file is damaged or was edited, nothing was restored"
        )
    if counts != header["tables"]:
        raise BackupInvalid(f"{path}: the header counts rows {header['tables']}, the file holds {counts}")
    return header


def _blocks(path: Path) -> Iterator[tuple[str, list[str], list[list]]]:
    """(table, columns, rows) of each table in a verified backup, in the order written."""
    lines = _lines(path)
    next(lines)
    table, columns, rows = None, [], []
    for number, line in enumerate(lines, start=2):
        value = _parse(path, number, line)
        if isinstance(value, dict):
            if table is not None:
                yield table, columns, rows
            table, columns, rows = value["table"], value["columns"], []
        else:
            rows.append(value)
    if table is not None:
        yield table, columns, rows


# Restoring


def _revisions() -> list[str]:
    """This code's revisions, oldest first."""
    from alembic.script import ScriptDirectory

    return [script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()][::-1]


def _rows_in(conn: sa.Connection, names: set[str]) -> dict[str, int]:
    present = set(sa.inspect(conn).get_table_names()) & names
    return {
        name: count
        for name in sorted(present)
        if (count := conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar())
    }


def _fix_sequences(conn: sa.Connection) -> None:
    """PostgreSQL: point each autoincrement column's sequence past the largest restored id."""
    for table in metadata.sorted_tables:
        column = table.autoincrement_column
        if column is not None:
            largest = sa.select(sa.func.max(column)).scalar_subquery()
            sequence = sa.func.pg_get_serial_sequence(table.name, column.name)
            conn.execute(sa.select(sa.func.setval(sequence, sa.func.coalesce(largest, 0) + 1, False)))


def restore_state(engine: sa.Engine, path: Path, replace: bool = False) -> dict:
    """Restore the backup at ``path`` into the state database behind ``engine``, in one transaction; its header.

    The target is migrated to the backup's revision, loaded, then upgraded to this code's head (so a backup
    of an older release is carried forward by the migrations). Refused, changing nothing: a damaged file
    (``ChecksumMismatch``), a backup or a target from a newer release (``StateSchemaMismatch``), and a target
    with rows in any platform table unless ``replace`` (``RestoreRefused``), which deletes them first.
    """
    from alembic import command

    header = read_backup_header(path)
    revisions = _revisions()
    where = engine.url.render_as_string(hide_password=True)
    if header["revision"] not in revisions:
        raise StateSchemaMismatch(
            f"{path} is at schema revision {header['revision']}, which this code does not know (its head is "
            f"{head_revision()}): a newer release wrote it; restore it with that release"
        )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_SCHEMA_LOCK})
        elif conn.dialect.name == "sqlite":  # pysqlite begins only before DML: begin now, the migrations' DDL too
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        current = current_revision(conn)
        if current is not None and current not in revisions:
            raise StateSchemaMismatch(
                f"the state database {where} is at schema revision {current}, which this code does not know: "
                "a newer release migrated it; restore with that release, or into a fresh database (--url)"
            )
        occupied = _rows_in(conn, set(metadata.tables) | set(header["tables"]))
        if occupied and not replace:
            raise RestoreRefused(
                f"the state database {where} is not empty (rows: {occupied}); restore into a fresh database "
                "(--url), or pass --replace to delete its rows first"
            )
        present = set(sa.inspect(conn).get_table_names())
        for table in reversed(metadata.sorted_tables):
            if table.name in present:
                conn.execute(table.delete())
        if current is not None and revisions.index(current) > revisions.index(header["revision"]):
            command.downgrade(alembic_config(conn), header["revision"])  # its tables are empty by now
        command.upgrade(alembic_config(conn), header["revision"])
        for name, columns, rows in _blocks(path):
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            unknown = sorted(set(columns) - set(table.columns.keys()))
            if unknown:
                raise BackupInvalid(f"{path}: {name} has columns {unknown} that revision {header['revision']} lacks")
            decoded = [
                {column: _decode(table.columns[column], value) for column, value in zip(columns, row, strict=True)}
                for row in rows
            ]
            for start in range(0, len(decoded), BATCH_ROWS):
                conn.execute(table.insert(), decoded[start : start + BATCH_ROWS])
        restored = _rows_in(conn, set(header["tables"]))
        expected = {name: count for name, count in header["tables"].items() if count}
        if restored != expected:
            raise BackupInvalid(f"{path}: {restored} rows restored, the backup holds {expected}; rolled back")
        command.upgrade(alembic_config(conn), "head")
        if conn.dialect.name == "postgresql":
            _fix_sequences(conn)
    return header


# Airflow's metadata database: its own tools, not a logical dump


def _pg_command(url: sa.URL) -> tuple[list[str], dict[str, str]]:
    """libpq arguments and environment (the password as PGPASSWORD, never on the command line) of ``url``."""
    args = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432), "--dbname", url.database or ""]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ) | ({"PGPASSWORD": url.password} if url.password else {})
    return args, env


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise RuntimeError(f"{command[0]} is not installed (Debian: apt-get install postgresql-client)") from None
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {done.returncode}: {done.stderr.strip()[-2000:]}")


def _sqlite_copy(source: str, target: str) -> None:
    """SQLite's online backup (what the ``sqlite3`` shell's ``.backup`` runs) of ``source`` onto ``target``."""
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def back_up_airflow_db(url: str | sa.URL, path: Path) -> str:
    """Back up Airflow's metadata database at ``url`` to ``path`` (atomically): ``pg_dump -Fc`` on PostgreSQL,
    SQLite's online backup on SQLite. Returns what ran."""
    url = sa.make_url(url)
    backend = url.get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        raise ValueError(f"the metadata database must be PostgreSQL or SQLite, not {backend} ({url!r})")
    with _atomic(path) as temporary:
        if backend == "sqlite":
            if not Path(url.database or "").is_file():
                raise FileNotFoundError(f"no SQLite metadata database at {url.database}")
            _sqlite_copy(url.database, str(temporary))
            return f"SQLite backup of {url.database}"
        args, env = _pg_command(url)
        _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(temporary), *args], env)
        return f"pg_dump -Fc of {url.render_as_string(hide_password=True)}"


def restore_airflow_db(url: str | sa.URL, path: Path) -> str:
    """Restore a ``back_up_airflow_db`` file into the metadata database at ``url`` (Airflow stopped), replacing what
    it holds: ``pg_restore --clean`` in one transaction, or SQLite's backup API onto the file. Returns what ran."""
    url = sa.make_url(url)
    if not path.is_file():
        raise FileNotFoundError(f"no metadata backup at {path}")
    if url.get_backend_name() == "sqlite":
        _sqlite_copy(str(path), url.database)
        return f"SQLite restore onto {url.database}"
    args, env = _pg_command(url)
    options = ["--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error"]
    _run(["pg_restore", *options, *args, str(path)], env)
    return f"pg_restore of {path} into {url.render_as_string(hide_password=True)}"


# The hourly copies in two regions


def backup_key(at: datetime) -> str:
    """The object key of the backup of the hour ``at`` falls in (one per hour: a re-run writes the same key)."""
    return f"{OBJECT_PREFIX}{at.astimezone(UTC):%Y-%m-%dT%H}Z.jsonl.gz"


def backup_regions(catalogue: Catalogue, names: list[str] | None = None) -> list[Region]:
    """The regions whose stores keep the backups: ``names``, or the primary and the first other region."""
    if not names:
        names = [region.name for region in (catalogue.primary, catalogue.secondary) if region is not None]
    regions = [catalogue.region(name) for name in dict.fromkeys(names)]
    if len(regions) < 2:
        raise ValueError(f"backups need two regions, so that losing one keeps a copy; got {[r.name for r in regions]}")
    return regions


def back_up_to_regions(
    catalogue: Catalogue, engine: sa.Engine, at: datetime, region_names: list[str] | None, retention_days: int
) -> dict:
    """Back up the state database as the hour of ``at`` to each backup region's store, read each copy back,
    and delete that store's backups older than ``retention_days`` before it. A summary of what was done."""
    from include.clouds.objectstore import SHA256_METADATA, store_for

    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, not {retention_days}")
    regions = backup_regions(catalogue, region_names)
    key, cutoff = backup_key(at), backup_key(at - timedelta(days=retention_days))
    with tempfile.TemporaryDirectory() as scratch:
        header = back_up_state(engine, Path(scratch) / "state.jsonl.gz")
        data = (Path(scratch) / "state.jsonl.gz").read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    deleted: dict[str, list[str]] = {}
    for region in regions:
        store = store_for(region)
        store.put_bytes(key, data, {SHA256_METADATA: sha256, "revision": header["revision"]})
        landed = hashlib.sha256(store.get_bytes(key)).hexdigest()
        if landed != sha256:
            raise ChecksumMismatch(f"{store.url(key)}: reads back with sha256 {landed}, {sha256} was written")
        expired = [old for old in store.list_keys(OBJECT_PREFIX) if _OBJECT_KEY.match(old) and old < cutoff]
        deleted[region.name] = expired
        for old in expired:
            store.delete(old)
    return {
        "key": key,
        "sha256": sha256,
        "bytes": len(data),
        "revision": header["revision"],
        "tables": header["tables"],
        "regions": [region.name for region in regions],
        "deleted": deleted,
    }


def fetch_backup(region: Region, path: Path, key: str | None = None) -> str:
    """Download the backup ``key`` (default: the newest) from ``region``'s store to ``path``; the key fetched."""
    from include.clouds.objectstore import store_for

    store = store_for(region)
    if key is None:
        keys = sorted(found for found in store.list_keys(OBJECT_PREFIX) if _OBJECT_KEY.match(found))
        if not keys:
            raise FileNotFoundError(f"no state backups under {store.url(OBJECT_PREFIX)}")
        key = keys[-1]
    with _atomic(path) as temporary:
        temporary.write_bytes(store.get_bytes(key))
    return key
