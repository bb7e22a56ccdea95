"""Claims on the replication status table (``StatusStore.claim``), on SQLite and on PostgreSQL (127.0.0.1:5432):
who may claim a replica, taking over a stale one, releasing a run's claims, and concurrent claimers of which
exactly one wins (threads, and processes as the plan tasks of concurrent runs are)."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from include.replication.status import StatusStore, as_utc
from include.state.migrate import upgrade_state_db

SHA, OTHER_SHA = "ab" * 32, "cd" * 32
KEY = ("fraud", "3", "gcp-europe-west1")
SOURCE = "aws-us-west-2"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    """A migrated state database of its own: a SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
        upgrade_state_db(url)
        yield url
        return
    url = request.getfixturevalue("postgres_url")
    upgrade_state_db(url)
    yield url


@pytest.fixture
def store(url):
    engine = sa.create_engine(url)
    yield StatusStore(engine)
    engine.dispose()


def claim(store: StatusStore, run_id: str, sha: str = SHA, key=KEY, **kwargs):
    return store.claim(*key, SOURCE, sha, run_id, **kwargs)


def test_a_first_claim_wins_and_records_the_content_pending(store):
    event = datetime(2026, 5, 1, 12, tzinfo=UTC)
    outcome = claim(store, "run-a", event_time=event)
    assert outcome.won
    row = outcome.row
    assert (row.state, row.run_id, row.sha256, row.source_region) == ("pending", "run-a", SHA, SOURCE)
    assert as_utc(row.event_time) == event and row.verified_at is None


@pytest.mark.parametrize("state", ["pending", "copying", "verified"])
def test_another_run_loses_to_a_hold_of_the_same_content(store, state):
    claim(store, "run-a")
    store.record(*KEY, SOURCE, state, run_id="run-a")
    outcome = claim(store, "run-b")
    assert not outcome.won
    assert (outcome.row.state, outcome.row.run_id) == (state, "run-a")


@pytest.mark.parametrize("state", ["failed", "corrupt"])
def test_a_failed_replica_can_be_claimed_again(store, state):
    claim(store, "run-a")
    store.record(*KEY, SOURCE, state, run_id="run-a", message="checksum mismatch")
    outcome = claim(store, "run-b")
    assert outcome.won
    assert (outcome.row.state, outcome.row.run_id, outcome.row.message) == ("pending", "run-b", None)


def test_other_content_wins_over_a_hold(store):
    claim(store, "run-a")
    outcome = claim(store, "run-b", sha=OTHER_SHA)
    assert outcome.won and outcome.row.sha256 == OTHER_SHA


def test_a_row_without_recorded_content_can_be_claimed(store):
    store.record(*KEY, SOURCE, "pending", run_id="run-a")  # as plan recorded before claims
    assert claim(store, "run-b").won


def test_the_same_run_claims_again_when_its_plan_is_retried(store):
    claim(store, "run-a")
    assert claim(store, "run-a").won


def test_a_stale_hold_is_taken_over_once(store):
    claim(store, "run-a")
    stale = claim(store, "run-b").row  # run-a is over without releasing it
    assert claim(store, "run-b", replacing=stale).won
    assert not claim(store, "run-c", replacing=stale).won, "run-c judged a hold that run-b has taken since"


def test_an_event_time_is_kept_when_a_claim_brings_none(store):
    event = datetime(2026, 5, 1, 12, tzinfo=UTC)
    claim(store, "run-a", event_time=event)
    store.record(*KEY, SOURCE, "failed", run_id="run-a")
    assert as_utc(claim(store, "run-b").row.event_time) == event


def test_release_fails_only_the_runs_unfinished_holds(store):
    keys = [("m", "1", region) for region in ("gcp-europe-west1", "azure-eastus")] + [("m", "2", "azure-eastus")]
    for key in keys:
        claim(store, "run-a", key=key)
    store.record(*keys[0], SOURCE, "copying", run_id="run-a")
    store.record(*keys[1], SOURCE, "verified", run_id="run-a")
    claim(store, "run-b", key=("m", "3", "azure-eastus"))
    released = store.release_claims("run-a", "run-a ended first")
    assert sorted((r.version, r.region) for r in released) == [("1", "gcp-europe-west1"), ("2", "azure-eastus")]
    states = {(r.version, r.region): (r.state, r.message) for r in store.rows()}
    assert states == {
        ("1", "gcp-europe-west1"): ("failed", "run-a ended first"),
        ("1", "azure-eastus"): ("verified", None),
        ("2", "azure-eastus"): ("failed", "run-a ended first"),
        ("3", "azure-eastus"): ("pending", None),
    }
    assert claim(store, "run-c", key=keys[0]).won


def test_concurrent_threads_exactly_one_wins(url):
    engine = sa.create_engine(url, pool_size=8, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    store = StatusStore(engine)
    runs = [f"run-{i}" for i in range(8)]
    start = threading.Barrier(len(runs))

    def contend(run_id: str) -> bool:
        start.wait()
        return claim(store, run_id).won

    try:
        with ThreadPoolExecutor(len(runs)) as pool:
            outcomes = dict(zip(runs, pool.map(contend, runs), strict=True))
        assert sum(outcomes.values()) == 1, outcomes
        (winner,) = [run for run, won in outcomes.items() if won]
        assert [row.run_id for row in store.rows()] == [winner]
    finally:
        engine.dispose()


def claim_versions(url: str, run_id: str, versions: int, start) -> list[str]:
    """In a process of its own, as a plan task: claim ``versions`` versions; the versions won."""
    engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    store = StatusStore(engine)
    start.wait()
    try:
        return [str(v) for v in range(versions) if claim(store, run_id, key=("m", str(v), "azure-eastus")).won]
    finally:
        engine.dispose()


def test_concurrent_processes_claim_each_version_once(url):
    runs, versions = 4, 40
    context = multiprocessing.get_context("spawn")  # no engine or lock state inherited from this process
    with context.Manager() as manager:
        start = manager.Barrier(runs)
        with ProcessPoolExecutor(runs, mp_context=context) as pool:
            futures = [pool.submit(claim_versions, url, f"run-{i}", versions, start) for i in range(runs)]
            won = {f"run-{i}": future.result(timeout=120) for i, future in enumerate(futures)}
    counts = Counter(version for versions_won in won.values() for version in versions_won)
    assert counts == Counter({str(v): 1 for v in range(versions)}), won
    engine = sa.create_engine(url)
    try:
        holders = {row.version: row.run_id for row in StatusStore(engine).rows()}
    finally:
        engine.dispose()
    assert holders == {version: run for run, versions_won in won.items() for version in versions_won}
