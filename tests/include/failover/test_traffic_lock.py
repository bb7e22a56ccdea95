"""The traffic lock and the circuit breaker's ledger, on SQLite and on the machine's PostgreSQL: one holder at a
time, a dead holder's lease expires, and the breaker's count and entry are one step under the lock."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from include.errors import TrafficLockTimeout
from include.failover.store import FailoverStore
from include.state.migrate import upgrade_state_db


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    upgrade_state_db(engine)
    yield FailoverStore(engine)
    engine.dispose()


def test_one_holder_at_a_time(store):
    inside, overlaps = [], []

    def hold(name: str) -> None:
        for _ in range(5):
            with store.lock("dns:x", name, wait_seconds=30):
                inside.append(name)
                if len(inside) > 1:
                    overlaps.append(list(inside))
                time.sleep(0.01)
                inside.remove(name)

    threads = [threading.Thread(target=hold, args=(f"holder-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


def test_a_held_lock_times_out_naming_its_holder_and_expires_with_its_lease(store):
    taken = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.lock("dns:x", "run-1", lease_seconds=1.5):
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(5)
    with pytest.raises(TrafficLockTimeout, match=r"lock 'dns:x' not free within 0s \(held by run-1 until"):
        with store.lock("dns:x", "run-2", wait_seconds=0.2):
            pass
    with store.lock("dns:x", "run-3", wait_seconds=5):  # the holder is stuck: its lease expires
        pass
    release.set()
    holder.join()
    with store.lock("dns:x", "run-4", wait_seconds=0.5):  # the stuck holder's release freed nothing of run-3's
        pass


def test_the_breaker_counts_an_episode_once_and_stops_at_its_limit(store):
    assert store.start_failover("a", 10.0, "health-watch", "automatic", limit=2) == []
    assert store.start_failover("a", 10.0, "run-1", "automatic", limit=2) == []  # the DAG, same episode
    assert [r["region"] for r in store.start_failover("b", 20.0, "run-2", "graceful", limit=2)] == ["a"]
    refused = store.start_failover("c", 30.0, "run-3", "automatic", limit=2)
    assert [r["region"] for r in refused] == ["a", "b"]  # at the limit: not entered
    assert [r["region"] for r in store.failovers_started(0)] == ["a", "b"]
    store.start_failover("c", 30.0, "run-3", "immediate", limit=2, override=True)
    assert [(r["region"], r["override"]) for r in store.failovers_started(0)][-1] == ("c", True)


def test_concurrent_failovers_at_the_limit_enter_exactly_the_limit(store):
    """Under the traffic lock, as TrafficController.check_failover takes it, count and entry are one step."""
    results = []

    def fail_over(region: str) -> None:
        with store.lock("dns:x", region, wait_seconds=30):
            recent = store.start_failover(region, 1.0, region, "automatic", limit=3)
            results.append(len(recent) < 3)

    threads = [threading.Thread(target=fail_over, args=(f"r{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 3 and len(store.failovers_started(0)) == 3
