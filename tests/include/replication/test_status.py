"""Unit tests of the replication status store on a SQLite file, its text table and size formatting."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy

from include.replication.status import StatusStore, as_utc, format_table, human_size
from include.state.engine import state_engine
from include.state.migrate import upgrade_state_db

SHA = "ab" * 32
SOURCE = "aws-us-west-2"


@pytest.fixture
def store(tmp_path) -> StatusStore:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/s.db")
    upgrade_state_db(engine)
    return StatusStore(engine)


def only_row(store: StatusStore):
    (row,) = store.rows()
    return row


def test_upsert_keeps_one_row_per_key(store):
    for state in ("pending", "copying", "verified"):
        store.record("fraud", "3", "gcp-europe-west1", SOURCE, state)
    row = only_row(store)
    assert (row.model, row.version, row.region, row.source_region, row.state) == (
        "fraud",
        "3",
        "gcp-europe-west1",
        SOURCE,
        "verified",
    )


def test_optional_values_kept_when_not_given(store):
    event = datetime(2026, 5, 1, 12, tzinfo=UTC)
    store.record("m", "1", "azure-eastus", SOURCE, "pending", event_time=event, run_id="run-1")
    store.record("m", "1", "azure-eastus", SOURCE, "copying", sha256=SHA, size=42)
    store.record("m", "1", "azure-eastus", SOURCE, "verified")
    row = only_row(store)
    assert (row.sha256, row.bytes, as_utc(row.event_time), row.run_id) == (SHA, 42, event, "run-1")


def test_given_values_replace_old_ones(store):
    store.record("m", "1", "azure-eastus", SOURCE, "copying", sha256=SHA, size=42, run_id="run-1")
    store.record("m", "1", "azure-eastus", SOURCE, "copying", sha256="cd" * 32, size=7, run_id="run-2")
    row = only_row(store)
    assert (row.sha256, row.bytes, row.run_id) == ("cd" * 32, 7, "run-2")


def test_unknown_state_rejected(store):
    with pytest.raises(ValueError, match="unknown replication state 'done'"):
        store.record("m", "1", "azure-eastus", SOURCE, "done")
    assert store.rows() == []


def test_verified_at_set_at_first_verification(store):
    store.record("m", "1", "azure-eastus", SOURCE, "pending")
    assert only_row(store).verified_at is None
    before = datetime.now(UTC)
    store.record("m", "1", "azure-eastus", SOURCE, "verified")
    assert before <= as_utc(only_row(store).verified_at) <= datetime.now(UTC)


def test_verified_at_not_moved_by_repair(store):
    store.record("m", "1", "azure-eastus", SOURCE, "verified")
    first = only_row(store).verified_at
    store.record("m", "1", "azure-eastus", SOURCE, "copying", message="repairing")
    store.record("m", "1", "azure-eastus", SOURCE, "verified", message="repaired")
    assert only_row(store).verified_at == first


def test_verified_at_reset_by_new_request(store):
    store.record("m", "1", "azure-eastus", SOURCE, "verified")
    first = only_row(store).verified_at
    store.record("m", "1", "azure-eastus", SOURCE, "pending")
    assert only_row(store).verified_at is None
    store.record("m", "1", "azure-eastus", SOURCE, "verified")
    assert only_row(store).verified_at > first


def test_lag_is_verified_at_minus_event_time(store):
    event = datetime.now(UTC) - timedelta(minutes=10)
    store.record("m", "1", "azure-eastus", SOURCE, "pending", event_time=event)
    assert only_row(store).lag_seconds is None
    store.record("m", "1", "azure-eastus", SOURCE, "verified")
    row = only_row(store)
    assert row.lag_seconds == (as_utc(row.verified_at) - event).total_seconds()
    assert 600 <= row.lag_seconds < 660


def test_rows_filtered_and_ordered(store):
    for model, version, region in [
        ("b", "1", "gcp-europe-west1"),
        ("a", "2", "gcp-europe-west1"),
        ("a", "1", "gcp-europe-west1"),
        ("a", "1", "azure-eastus"),
    ]:
        store.record(model, version, region, SOURCE, "pending")
    keys = [(r.model, r.version, r.region) for r in store.rows()]
    assert keys == sorted(keys)
    assert [(r.version, r.region) for r in store.rows("a")] == [
        ("1", "azure-eastus"),
        ("1", "gcp-europe-west1"),
        ("2", "gcp-europe-west1"),
    ]
    assert [r.region for r in store.rows("a", "1")] == ["azure-eastus", "gcp-europe-west1"]
    assert store.rows("c") == []


def test_format_table_lists_rows(store):
    store.record("fraud", "3", "gcp-europe-west1", SOURCE, "verified", sha256=SHA, size=5 * 2**20)
    store.record("fraud", "3", "azure-eastus", SOURCE, "failed", sha256=SHA, message="checksum mismatch on a.bin")
    lines = format_table(store.rows()).splitlines()
    assert lines[0].split()[:4] == ["model", "version", "region", "state"]
    azure, gcp = lines[1:]
    assert "azure-eastus" in azure and "failed" in azure and azure.endswith("checksum mismatch on a.bin")
    assert "gcp-europe-west1" in gcp and "5.0 MiB" in gcp and gcp.endswith(SHA[:16])


def test_format_table_shows_lag(store):
    store.record("m", "1", "azure-eastus", SOURCE, "pending", event_time=datetime.now(UTC) - timedelta(seconds=90))
    store.record("m", "1", "azure-eastus", SOURCE, "verified")
    row = only_row(store)
    assert f" {row.lag_seconds:.0f} " in format_table([row])
    assert 90 <= row.lag_seconds < 120


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 2**20, "5.0 MiB"),
        (3 * 2**30, "3.0 GiB"),
        (2048 * 2**30, "2048.0 GiB"),
        (2**50, "1048576.0 GiB"),
    ],
)
def test_human_size(size, text):
    assert human_size(size) == text


def test_from_connection_uses_airflow_connection(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_MLP_STATE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "c.db")}))
    upgrade_state_db(state_engine("mlp_state"))
    store = StatusStore.from_connection("mlp_state")
    store.record("m", "1", "azure-eastus", SOURCE, "pending")
    assert (tmp_path / "c.db").exists()
    assert [r.region for r in StatusStore.from_connection("mlp_state").rows()] == ["azure-eastus"]
