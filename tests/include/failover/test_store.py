"""The persisted failover state (SQLite here, the same SQL on PostgreSQL): restarts lose nothing, one writer wins."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from include.errors import ConcurrentStateChange
from include.failover.machine import RegionRecord, State, moved
from include.failover.store import FailoverStore, format_states
from include.state.migrate import upgrade_state_db


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    upgrade_state_db(engine)
    return engine


def test_new_regions_start_healthy_and_survive_a_new_store(engine):
    records = FailoverStore(engine).load(["a", "b"])
    assert {r.state for r in records.values()} == {State.HEALTHY}
    updated, transition = moved(records["a"], State.FAILOVER, "drained", {"why": "test"}, 100.0, held=True)
    FailoverStore(engine).save([updated], [transition], run_id="run-1")
    again = FailoverStore(engine).load(["a", "b"])  # as after a scheduler restart
    assert again["a"].state == State.FAILOVER and again["a"].held and again["a"].version == 1
    assert again["b"].state == State.HEALTHY
    [logged] = FailoverStore(engine).transitions(region="a")
    assert logged.to_state == State.FAILOVER and logged.evidence == {"why": "test"}
    assert "FAILOVER" in format_states(again, now=200.0)


def test_a_stale_writer_is_refused_and_writes_nothing(engine):
    store = FailoverStore(engine)
    first = store.load(["a"])["a"]
    store.save([moved(first, State.DEGRADED, "writer 1", {}, 1.0)[0]], [])
    stale, transition = moved(first, State.UNHEALTHY, "writer 2", {}, 2.0)
    with pytest.raises(ConcurrentStateChange, match="changed since version 0"):
        store.save([stale], [transition])
    assert store.load(["a"])["a"].state == State.DEGRADED
    assert store.transitions() == []


def test_transitions_since_filters_by_time(engine):
    store = FailoverStore(engine)
    record = store.load(["a"])["a"]
    for at in (10.0, 20.0):
        record, transition = moved(record, State.FAILOVER, f"at {at}", {}, at)
        store.save([record], [transition])
        record = RegionRecord(**{**record.__dict__, "version": record.version + 1})
    assert [t.reason for t in store.transitions(since=15.0)] == ["at 20.0"]
