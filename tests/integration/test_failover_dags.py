"""Whole runs (``dag.test()``) of the health DAG and the manual failover DAG against real serving regions.

The health DAG's sensor defers to its trigger, which ``dag.test()`` runs in-process; the regions are real
serving processes behind fault proxies (``failover_harness``), Route 53 and the stores are the emulators, and
the alerts go to a real webhook receiver on loopback.
"""

from __future__ import annotations

import pytest

from include.catalogue import CATALOGUE_ENV
from tests.integration.conftest import WEBHOOK_CONN_ID
from tests.integration.failover_harness import AWS, AZURE, GCP, HealthLoop
from tests.integration.helpers import parse_dag, task_states

pytestmark = pytest.mark.integration


@pytest.fixture
def platform(chaos_regions, webhook, monkeypatch, request, dag_test_keeps_defer_kwargs):
    """The chaos regions with a catalogue of this test's own (records, state), set as the DAGs' catalogue."""
    chaos_regions.heal()
    tag = request.node.name.replace("_", "-")[:30].strip("-")
    catalogue, path = chaos_regions.catalogue_for(
        tag, {"dns": {"ttl": 1}, "failover": {"notify_connection": WEBHOOK_CONN_ID}}
    )
    monkeypatch.setenv(CATALOGUE_ENV, str(path))
    loop = HealthLoop(catalogue, path)  # creates the records; its store and DNS are the DAGs' too
    yield loop
    loop.close()
    chaos_regions.heal()


def test_health_watch_switches_dns_and_failover_moves_records_it(airflow_db, chaos_regions, platform, webhook):
    chaos_regions.kill(AZURE)
    reports = []
    while platform.states()[AZURE] != "UNHEALTHY":
        reports += platform.watch(timeout=15)
        assert len(reports) < 10, reports
    # The watch made the first DNS change itself, through the serialised path; the state stays UNHEALTHY
    # (a move due) until failover_moves has checked the receivers and recorded it.
    assert [t["to_state"] for r in reports for t in r["transitions"]] == ["DEGRADED", "UNHEALTHY"]
    [switch] = [s for r in reports for s in r["switches"]]
    assert switch["region"] == AZURE and sorted(switch["receivers"]) == [AWS, GCP] and switch["change_id"]
    assert platform.weights() == {AWS: 100, GCP: 100, AZURE: 0}

    moved = task_states(parse_dag("failover_moves.py", "failover_moves").test())
    assert moved["automatic_failover"] == "success" and moved["wait_for_dns_propagation"] == "success", moved
    assert moved["graceful_failover"] == "skipped" and moved["failback"] == "skipped"
    assert platform.weights() == {AWS: 100, GCP: 100, AZURE: 0}
    assert platform.states()[AZURE] == "FAILOVER"
    failover = platform.store.transitions(region=AZURE)[-1]
    assert failover.evidence["switched_by_watch"]["change_id"] == switch["change_id"]
    again = task_states(parse_dag("failover_moves.py", "failover_moves").test())  # a repeated request
    assert again["no_move"] == "success" and again["automatic_failover"] == "skipped"
    # This run had no watch report to alert on (dag.test() has no asset events): the move's alert only.
    assert [(a["from_state"], a["to_state"]) for a in webhook if a["kind"] == "transition"] == [
        ("UNHEALTHY", "FAILOVER")
    ]


def test_moves_due_alerts_on_every_report_of_the_run(platform):
    from include.failover.watch import moves_due

    platform.store.load([AWS, GCP, AZURE])
    transition = {
        "region": GCP,
        "from_state": "HEALTHY",
        "to_state": "DEGRADED",
        "at": 1.0,
        "reason": "round failed",
        "evidence": {"verdict": "failed"},
    }
    switch = {"region": AZURE, "receivers": [AWS], "change_id": "C1", "before": {}, "at": 2.0}
    refusal = {"region": AWS, "refused": "not failing over aws: circuit breaker open", "at": 3.0}
    reports = [{"transitions": [transition]}, {"switches": [switch], "refusals": [refusal]}]
    listed = moves_due(platform.catalogue, platform.store, reports, "run-1")
    assert listed["actions"] == []  # every region is HEALTHY in the store: the reports only wake the run up
    assert [(a["kind"], a["region"]) for a in listed["alerts"]] == [
        ("transition", GCP),
        ("switched", AZURE),
        ("refused", AWS),
    ]
    assert "C1" in listed["alerts"][1]["text"] and listed["alerts"][2]["severity"] == "critical"


def test_manual_failover_and_failback(airflow_db, platform, webhook):
    conf = {"region": GCP, "action": "failover", "strategy": "immediate", "reason": "planned maintenance"}
    states = task_states(parse_dag("manual_failover.py", "manual_failover").test(run_conf=conf))
    assert states["immediate_failover"] == "success" and states["graceful_failover"] == "skipped"
    assert platform.weights() == {AWS: 100, GCP: 0, AZURE: 100}
    record = platform.store.load([GCP])[GCP]
    assert str(record.state) == "FAILOVER" and record.held
    assert "manual failover by an operator: planned maintenance" in record.reason

    platform.run_for(4)  # held: a healthy region that an operator took out is not failed back by itself
    assert platform.states()[GCP] == "FAILOVER" and platform.weights()[GCP] == 0

    conf = {"region": GCP, "action": "failback", "strategy": "graceful", "reason": "maintenance done"}
    states = task_states(parse_dag("manual_failover.py", "manual_failover").test(run_conf=conf))
    assert states["failback"] == "success"
    assert platform.weights() == {AWS: 100, GCP: 100, AZURE: 100} and platform.states()[GCP] == "HEALTHY"
    assert [a["text"] for a in webhook][-1].startswith(f"{GCP}: FAILOVER -> HEALTHY: failback complete")


def test_manual_failback_of_a_serving_region_is_refused_and_alerted(airflow_db, platform, webhook):
    conf = {"region": AWS, "action": "failback", "strategy": "graceful", "reason": "by mistake"}
    states = task_states(parse_dag("manual_failover.py", "manual_failover").test(run_conf=conf))
    assert states["no_move"] == "success"
    assert webhook[-1]["kind"] == "refused" and "is HEALTHY, not failed over" in webhook[-1]["text"]
    assert set(platform.weights().values()) == {100}
