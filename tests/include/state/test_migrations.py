"""The state database's Alembic migrations, on SQLite and on PostgreSQL (127.0.0.1:5432), and how they ship."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from include.errors import StateSchemaMismatch, StateSchemaMissing
from include.failover.store import FailoverStore
from include.replication.status import StatusStore
from include.state import migrate
from include.state.__main__ import main
from include.state.migrate import VERSION_TABLE, head_revision, upgrade_state_db
from include.state.schema import failover_transitions, metadata, region_state, replication_status


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite file."""
    path = tmp_path / "state.db"
    path.touch()
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def engine(url: str):
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def schema_diffs(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        return compare_metadata(context, metadata)


def test_upgrade_creates_every_table_and_the_version_table(engine):
    assert upgrade_state_db(engine) == (None, head_revision())
    assert table_names(engine) == set(metadata.tables) | {VERSION_TABLE}  # never Airflow's alembic_version
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() == [head_revision()]


def test_upgrade_twice_is_a_no_op(engine):
    upgrade_state_db(engine)
    StatusStore(engine).record("m", "1", "gcp-europe-west1", "aws-us-west-2", "pending")
    assert upgrade_state_db(engine) == (head_revision(), head_revision())
    assert [row.model for row in StatusStore(engine).rows()] == ["m"]
    assert table_names(engine) == set(metadata.tables) | {VERSION_TABLE}


def test_the_migrated_schema_matches_schema_py(engine):
    upgrade_state_db(engine)
    assert schema_diffs(engine) == []


def test_upgrade_takes_a_url(url):
    assert upgrade_state_db(url) == (None, head_revision())
    assert upgrade_state_db(url) == (head_revision(), head_revision())


def test_a_database_the_stores_created_before_migrations_is_adopted(engine):
    """Before migrations the stores ran ``create_all`` themselves: upgrading keeps those tables and rows."""
    metadata.create_all(engine, tables=[replication_status, region_state, failover_transitions])
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO mlp_failover_transitions (region, from_state, to_state, at, reason, "
                             "evidence) VALUES ('a', 'HEALTHY', 'FAILOVER', 1.0, 'old', '{}')"))  # fmt: skip
    assert upgrade_state_db(engine) == (None, head_revision())
    assert [t.reason for t in FailoverStore(engine).transitions()] == ["old"]
    assert schema_diffs(engine) == []


def test_on_sqlite_the_migration_writes_the_same_ddl_as_create_all(tmp_path):
    def ddl(url: str) -> dict[str, str]:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index')"))
            found = {name: sql for name, sql in rows if name != VERSION_TABLE and sql}
        engine.dispose()
        return found

    created = f"sqlite:///{tmp_path / 'created.db'}"
    migrated = f"sqlite:///{tmp_path / 'migrated.db'}"
    engine = sa.create_engine(created)
    metadata.create_all(engine)
    engine.dispose()
    upgrade_state_db(migrated)
    assert ddl(migrated) == ddl(created) and len(ddl(created)) == 8  # five tables, three indexes


@pytest.mark.parametrize("store", [FailoverStore, StatusStore])
def test_a_store_on_an_unmigrated_database_says_how_to_fix_it(engine, store):
    with pytest.raises(StateSchemaMissing, match=r"no platform schema .*run `python -m include\.state upgrade`"):
        store(engine)
    assert table_names(engine) == set()  # nothing created on the fly


def test_a_store_on_an_older_revision_says_to_upgrade(engine, monkeypatch):
    _, current = upgrade_state_db(engine)
    monkeypatch.setattr(migrate, "head_revision", lambda: "0099")
    with pytest.raises(StateSchemaMismatch, match=rf"revision {current}, this code needs 0099: run `python -m include"):
        FailoverStore(engine)


def test_a_store_on_a_revision_from_a_newer_release_says_so(engine):
    upgrade_state_db(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00d'"))
    with pytest.raises(StateSchemaMismatch, match="revision f00d, which this code does not know"):
        StatusStore(engine)


def test_the_cli_upgrades_the_catalogues_state_connection(tmp_path, monkeypatch, capsys):
    path = tmp_path / "cli.db"
    monkeypatch.setenv("AIRFLOW_CONN_MLP_STATE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    assert main(["upgrade"]) == 0
    assert "upgraded from an empty database" in capsys.readouterr().out
    assert main(["upgrade"]) == 0
    assert "already there" in capsys.readouterr().out
    assert main(["current"]) == 0
    assert f"{head_revision()} (this code's head: {head_revision()})" in capsys.readouterr().out
    engine = sa.create_engine(f"sqlite:///{path}")
    assert schema_diffs(engine) == []
    engine.dispose()


def test_the_cli_current_exits_1_on_an_unmigrated_database(sqlite_url, capsys):
    assert main(["current", "--url", sqlite_url]) == 1
    assert "never migrated" in capsys.readouterr().out


# Packaging: the migrations are resources of the installed package (tests/test_packaging.py checks the wheel).

MIGRATION_FILES = ["env.py", "script.py.mako", "versions/__init__.py", "versions/0001_baseline.py"]


def test_the_migrations_are_package_resources():
    root = importlib.resources.files("include.state.migrations")
    for name in MIGRATION_FILES:
        assert root.joinpath(name).is_file(), name
    assert migrate.MIGRATIONS.resolve() == Path(str(root)).resolve()
