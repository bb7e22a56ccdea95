"""State backups: taken on SQLite, restored into a fresh PostgreSQL (127.0.0.1:5432) or SQLite database, and the
platform resumes from them; damaged, newer and misdirected backups are refused and change nothing."""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from include.catalogue import load_catalogue
from include.errors import (
    BackupInvalid,
    ChecksumMismatch,
    ConcurrentStateChange,
    RestoreRefused,
    StateSchemaMismatch,
    StateSchemaMissing,
)
from include.failover.machine import State, moved
from include.failover.store import FailoverStore
from include.replication.status import StatusStore, as_utc
from include.state import backup
from include.state.__main__ import main
from include.state.backup import (
    back_up_airflow_db,
    back_up_state,
    backup_key,
    backup_regions,
    read_backup_header,
    restore_airflow_db,
    restore_state,
)
from include.state.migrate import alembic_config, current_revision, head_revision, upgrade_state_db
from include.state.schema import failover_transitions, metadata

REGIONS = ["aws-us-west-2", "gcp-europe-west1", "azure-eastus"]
HOUR = 3600
LEDGER = "mlp_failover_starts"  # the circuit breaker's ledger (revision 0002)


def sqlite_engine(path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{path}")


def fill(engine: sa.Engine) -> None:
    """State as a running platform leaves it, written by the real stores: one region failed over (its record,
    transitions and the breaker's ledger), one degraded, a released traffic lock, and replication status."""
    now = time.time()
    failover = FailoverStore(engine)
    records = failover.load(REGIONS)
    aws, to_degraded = moved(records[REGIONS[0]], State.DEGRADED, "probe timeouts", {"failed": ["probe-a"]}, now - 90)
    aws = replace(aws, failures=2, failing_since=now - 90)
    gcp, to_unhealthy = moved(records[REGIONS[1]], State.UNHEALTHY, "refused", {"failed": ["probe-a", "b"]}, now - 60)
    failover.save([aws, gcp], [to_degraded, to_unhealthy], run_id="scheduled__1")
    with failover.lock("traffic:models", holder="failover_moves"):
        enter_in_ledger(engine, REGIONS[1], episode=gcp.since, started_at=now - 45)
    gcp = failover.load(REGIONS)[REGIONS[1]]
    gcp, to_failover = moved(gcp, State.FAILOVER, "drained", {"weights": {REGIONS[1]: 0}}, now - 30, held=True)
    failover.save([gcp], [to_failover], run_id="scheduled__2")
    status = StatusStore(engine)
    event = datetime.now(UTC) - timedelta(minutes=5)
    status.record("iris", "1", REGIONS[1], REGIONS[0], "verified", sha256="ab" * 32, size=4096, event_time=event)
    status.record("iris", "1", REGIONS[2], REGIONS[0], "failed", event_time=event, message="503 from Blob")
    status.record("iris", "2", REGIONS[1], REGIONS[0], "pending", run_id="manual__3")


def enter_in_ledger(engine: sa.Engine, region: str, episode: float, started_at: float) -> None:
    """A row of the circuit breaker's ledger (``mlp_failover_starts``, if this schema has it), as a move writes it."""
    if LEDGER in metadata.tables:
        with engine.begin() as conn:
            conn.execute(
                metadata.tables[LEDGER].insert(),
                {"region": region, "episode": episode, "started_at": started_at, "started_by": "health-watch",
                 "strategy": "graceful", "override": False},
            )  # fmt: skip


def breaker_count(engine: sa.Engine) -> int:
    """What the circuit breaker counts, failovers of the last hour: the ledger's rows, or else (before the ledger)
    the transitions to FAILOVER."""
    since = time.time() - HOUR
    with engine.connect() as conn:
        if LEDGER in metadata.tables:
            ledger = metadata.tables[LEDGER]
            return conn.execute(sa.select(sa.func.count()).where(ledger.c.started_at >= since)).scalar()
        transitions = failover_transitions.c
        to_failover = (transitions.to_state == str(State.FAILOVER)) & (transitions.at >= since)
        return conn.execute(sa.select(sa.func.count()).where(to_failover)).scalar()


def normalised(value: object) -> object:
    return as_utc(value) if isinstance(value, datetime) else value


def every_row(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every table's rows in primary-key order, datetimes in UTC (SQLite returns them naive)."""
    with engine.connect() as conn:
        return {
            table.name: [
                tuple(normalised(value) for value in row)
                for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in metadata.sorted_tables
        }


def status_rows(engine: sa.Engine) -> list[dict]:
    """The replication status as the status store reads it, datetimes in UTC."""
    return [{name: normalised(value) for name, value in row.__dict__.items()} for row in StatusStore(engine).rows()]


@pytest.fixture
def source(tmp_path: Path) -> sa.Engine:
    """A filled state database on SQLite, as the local platform has it."""
    engine = sqlite_engine(tmp_path / "source.db")
    upgrade_state_db(engine)
    fill(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def backup_file(source: sa.Engine, tmp_path: Path) -> Path:
    path = tmp_path / "backups" / "state.jsonl.gz"
    back_up_state(source, path)
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def fresh(request, tmp_path: Path) -> sa.Engine:
    """A fresh, empty database: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "fresh.db")
    else:
        engine = sa.create_engine(request.getfixturevalue("postgres_url"))
    yield engine
    engine.dispose()


def test_the_header_names_every_table_its_rows_revision_and_source(source, backup_file):
    header = read_backup_header(backup_file)
    assert set(header["tables"]) == set(metadata.tables)  # every table of schema.py, none hard-coded
    assert header["tables"] == {name: len(rows) for name, rows in every_row(source).items()}
    assert header["tables"].get(LEDGER, 1) == 1
    assert header["revision"] == head_revision()
    assert header["source"] == str(source.url)
    assert datetime.fromisoformat(header["created_at"]).tzinfo is not None
    assert len(header["sha256"]) == 64
    assert [path.name for path in backup_file.parent.iterdir()] == ["state.jsonl.gz"]  # no temporary file left


def test_restore_into_a_fresh_database_resumes_where_the_source_stopped(source, backup_file, fresh):
    restore_state(fresh, backup_file)

    with fresh.connect() as conn:
        assert current_revision(conn) == head_revision()
    assert every_row(fresh) == every_row(source)
    before, after = FailoverStore(source), FailoverStore(fresh)
    assert after.load(REGIONS) == before.load(REGIONS)  # state, counters, reason, held, version
    assert after.load(REGIONS)[REGIONS[1]].state == State.FAILOVER
    assert after.transitions() == before.transitions()
    assert breaker_count(fresh) == breaker_count(source) == 1
    assert [(t.region, t.to_state) for t in after.transitions() if t.to_state == State.FAILOVER] == [
        (REGIONS[1], State.FAILOVER)
    ]
    assert status_rows(fresh) == status_rows(source)
    assert [row.lag_seconds for row in StatusStore(fresh).rows()] == [
        row.lag_seconds for row in StatusStore(source).rows()
    ]


def test_compare_and_swap_and_ids_continue_after_a_restore(backup_file, fresh):
    restore_state(fresh, backup_file)
    store = FailoverStore(fresh)
    with fresh.connect() as conn:
        last_id = conn.execute(sa.select(sa.func.max(failover_transitions.c.id))).scalar()
    gcp = store.load(REGIONS)[REGIONS[1]]
    recovering, transition = moved(gcp, State.RECOVERING, "stable for 30 s", {}, time.time())
    store.save([recovering], [transition], run_id="after-restore")  # the restored version is the one to swap
    assert store.load(REGIONS)[REGIONS[1]].version == gcp.version + 1
    with pytest.raises(ConcurrentStateChange, match=f"changed since version {gcp.version}"):
        store.save([recovering], [])  # a writer still holding the restored version is refused
    with fresh.connect() as conn:
        ids = conn.execute(sa.select(failover_transitions.c.id).order_by(failover_transitions.c.id)).scalars().all()
    assert ids[-1] == last_id + 1  # PostgreSQL's sequence was moved past the restored ids
    if LEDGER in metadata.tables:
        enter_in_ledger(fresh, REGIONS[2], episode=1.0, started_at=time.time())
        with fresh.connect() as conn:
            assert conn.execute(sa.select(metadata.tables[LEDGER].c.id)).scalars().all() == [1, 2]
        assert breaker_count(fresh) == 2


def test_a_backup_taken_on_postgresql_restores_on_sqlite(backup_file, postgres_url, tmp_path, source):
    postgres, again = sa.create_engine(postgres_url), tmp_path / "from-postgres.jsonl.gz"
    try:
        restore_state(postgres, backup_file)
        assert back_up_state(postgres, again)["source"] == postgres.url.render_as_string(hide_password=True)
    finally:
        postgres.dispose()
    sqlite = sqlite_engine(tmp_path / "from-postgres.db")
    restore_state(sqlite, again)
    assert every_row(sqlite) == every_row(source)


def test_the_commands_back_up_and_restore(source, tmp_path, capsys):
    path, target = tmp_path / "cli.jsonl.gz", f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["backup", "--url", str(source.url), "--to", str(path)]) == 0
    assert f"backed up to {path}" in capsys.readouterr().out
    assert main(["restore", "--url", target, "--from", str(path)]) == 0
    assert f"now at revision {head_revision()}" in capsys.readouterr().out
    assert every_row(sa.create_engine(target)) == every_row(source)

    assert main(["restore", "--url", target, "--from", str(path)]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert main(["restore", "--url", target, "--from", str(path), "--replace"]) == 0


def test_a_non_empty_target_is_refused_unless_replace(backup_file, source, fresh):
    upgrade_state_db(fresh)
    StatusStore(fresh).record("other", "9", REGIONS[0], REGIONS[0], "verified")
    with pytest.raises(RestoreRefused, match=r"is not empty \(rows: \{'mlp_replication_status': 1\}\).*--replace"):
        restore_state(fresh, backup_file)
    assert [row.model for row in StatusStore(fresh).rows()] == ["other"]  # untouched

    restore_state(fresh, backup_file, replace=True)
    assert every_row(fresh) == every_row(source)


def rewrite(path: Path, edit) -> None:
    """Rewrite the backup's lines through ``edit`` (a list of lines in, a list out), keeping it gzip."""
    with gzip.open(path, "rb") as lines:
        edited = edit(lines.read().splitlines(keepends=True))
    with gzip.open(path, "wb") as out:
        out.writelines(edited)


def test_a_damaged_backup_is_refused_before_anything_changes(backup_file, fresh):
    rewrite(backup_file, lambda lines: [lines[0], *(line.replace(b"FAILOVER", b"HEALTHY") for line in lines[1:])])
    with pytest.raises(ChecksumMismatch, match="checksum mismatch: the header says sha256 .* nothing was restored"):
        restore_state(fresh, backup_file)
    assert sa.inspect(fresh).get_table_names() == []  # not even migrated

    backup_file.write_bytes(backup_file.read_bytes()[:-20])  # cut short
    with pytest.raises(BackupInvalid, match="not a readable gzip file"):
        restore_state(fresh, backup_file)
    backup_file.write_text("id,region\n")
    with pytest.raises(BackupInvalid, match="not a readable gzip file"):
        read_backup_header(backup_file)
    with pytest.raises(FileNotFoundError, match="no backup file at"):
        read_backup_header(backup_file.with_name("none.jsonl.gz"))


def resigned(lines: list[bytes], **header_fields) -> list[bytes]:
    """The lines with header fields changed and a checksum that matches (as a newer release would write it)."""
    import hashlib

    header = json.loads(lines[0]) | header_fields
    header["sha256"] = backup._checksum(header, hashlib.sha256(b"".join(lines[1:])).hexdigest())
    return [(json.dumps(header) + "\n").encode(), *lines[1:]]


def test_a_restore_that_fails_half_way_leaves_the_target_as_it_was(backup_file, fresh, monkeypatch):
    decode, decoded = backup._decode, []

    def fails_after_ten(column, value):
        decoded.append(value)
        if len(decoded) > 10:
            raise RuntimeError("the target went away")
        return decode(column, value)

    monkeypatch.setattr(backup, "_decode", fails_after_ten)
    with pytest.raises(RuntimeError, match="went away"):
        restore_state(fresh, backup_file)
    assert sa.inspect(fresh).get_table_names() == []  # migrations and rows in the one transaction, on SQLite too


def test_a_backup_from_a_newer_release_is_refused(backup_file, fresh):
    rewrite(backup_file, lambda lines: resigned(lines, revision="0099"))
    with pytest.raises(StateSchemaMismatch, match="revision 0099, which this code does not know .* that release"):
        restore_state(fresh, backup_file)
    assert sa.inspect(fresh).get_table_names() == []


def test_a_target_a_newer_release_migrated_is_refused(backup_file, fresh):
    upgrade_state_db(fresh)
    with fresh.begin() as conn:
        conn.execute(sa.text("UPDATE mlp_alembic_version SET version_num = '0099'"))
    with pytest.raises(StateSchemaMismatch, match="revision 0099, which this code does not know"):
        restore_state(fresh, backup_file)


def test_a_database_not_at_head_is_not_backed_up(tmp_path):
    with pytest.raises(StateSchemaMissing, match="no platform schema"):
        back_up_state(sqlite_engine(tmp_path / "empty.db"), tmp_path / "never.jsonl.gz")
    assert not (tmp_path / "never.jsonl.gz").exists()


def test_a_failed_backup_leaves_the_previous_file_as_it_was(source, backup_file, monkeypatch):
    before = backup_file.read_bytes()

    def unencodable(table, column, value):
        raise TypeError(f"{table}.{column}: no JSON form")

    monkeypatch.setattr(backup, "_encode", unencodable)
    with pytest.raises(TypeError, match="no JSON form"):
        back_up_state(source, backup_file)
    assert backup_file.read_bytes() == before
    assert [path.name for path in backup_file.parent.iterdir()] == ["state.jsonl.gz"]


def test_a_backup_of_an_older_revision_is_carried_forward_by_the_migrations(backup_file, source, fresh):
    """A backup from before revision 0002 (no lock or ledger tables): restored at 0001, then upgraded to head."""
    kept = {"mlp_replication_status", "mlp_region_state", "mlp_failover_transitions"}

    def at_0001(lines: list[bytes]) -> list[bytes]:
        body, table = [], None
        for line in lines[1:]:
            table = json.loads(line)["table"] if line.startswith(b"{") else table
            body += [line] if table in kept else []
        header = json.loads(lines[0])
        tables = {name: count for name, count in header["tables"].items() if name in kept}
        return resigned([lines[0], *body], revision="0001", tables=tables)

    rewrite(backup_file, at_0001)
    upgrade_state_db(fresh)
    StatusStore(fresh).record("other", "9", REGIONS[0], REGIONS[0], "verified")
    restore_state(fresh, backup_file, replace=True)  # a target at head: emptied, taken down to 0001, loaded, up again

    restored = every_row(fresh)
    assert {name: rows for name, rows in restored.items() if name in kept} == {
        name: rows for name, rows in every_row(source).items() if name in kept
    }
    assert all(rows == [] for name, rows in restored.items() if name not in kept)  # the tables 0002 added
    with fresh.connect() as conn:
        assert current_revision(conn) == head_revision()


def test_airflow_metadata_on_sqlite_backs_up_and_restores(tmp_path):
    live = tmp_path / "airflow.db"
    with sqlite_engine(live).begin() as conn:
        conn.execute(sa.text("CREATE TABLE connection (conn_id TEXT, password TEXT)"))
        conn.execute(sa.text("INSERT INTO connection VALUES ('aws_route53', 'gAAAA-fernet-encrypted')"))
    copy = tmp_path / "backups" / "airflow-metadata.backup"
    assert back_up_airflow_db(f"sqlite:///{live}", copy).startswith("SQLite backup")
    with sqlite_engine(live).begin() as conn:
        conn.execute(sa.text("DELETE FROM connection"))
    restore_airflow_db(f"sqlite:///{live}", copy)
    with sqlite_engine(live).connect() as conn:
        assert conn.execute(sa.text("SELECT conn_id FROM connection")).scalars().all() == ["aws_route53"]
    with pytest.raises(FileNotFoundError, match="no SQLite metadata database"):
        back_up_airflow_db(f"sqlite:///{tmp_path / 'none.db'}", copy)
    with pytest.raises(ValueError, match="PostgreSQL or SQLite, not mysql"):
        back_up_airflow_db("mysql://airflow@db/airflow", copy)


def test_airflow_metadata_on_postgresql_goes_through_pg_dump_and_pg_restore(postgres_url, tmp_path):
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE dag_run (id serial PRIMARY KEY, dag_id text)"))
            conn.execute(sa.text("INSERT INTO dag_run (dag_id) VALUES ('platform_backup')"))
        dump = tmp_path / "airflow-metadata.backup"
        assert back_up_airflow_db(postgres_url, dump).startswith("pg_dump -Fc")
        assert dump.read_bytes()[:5] == b"PGDMP"  # the custom format pg_restore reads
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE dag_run"))
        restore_airflow_db(postgres_url, dump)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT dag_id FROM dag_run")).scalars().all() == ["platform_backup"]
    finally:
        engine.dispose()


def test_hourly_keys_and_backup_regions():
    at = datetime(2026, 12, 7, 13, 59, 59, tzinfo=UTC)
    assert backup_key(at) == backup_key(at.replace(minute=0)) == "control-plane/state/2026-12-07T13Z.jsonl.gz"
    catalogue = load_catalogue()
    assert [region.name for region in backup_regions(catalogue)] == [catalogue.primary.name, catalogue.secondary.name]
    assert [region.name for region in backup_regions(catalogue, [REGIONS[2], REGIONS[1]])] == [REGIONS[2], REGIONS[1]]
    with pytest.raises(ValueError, match="backups need two regions"):
        backup_regions(catalogue, [REGIONS[0], REGIONS[0]])


def test_an_unmigrated_target_is_migrated_to_the_backup_revision(backup_file, fresh):
    """An empty database at an older revision (0001) is brought to the backup's, then loaded."""
    with fresh.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
    restore_state(fresh, backup_file)
    assert FailoverStore(fresh).load(REGIONS)[REGIONS[1]].state == State.FAILOVER
