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
    chaos_regions.heal()


def test_health_dag_requests_the_move_that_failover_moves_makes(airflow_db, chaos_regions, platform, webhook):
    chaos_regions.kill(AZURE)
    runs = []
    for _ in range(4):
        runs.append(task_states(parse_dag("region_health.py", "region_health").test()))
        if runs[-1].get("request_moves") == "success":
            break
    assert runs[0]["watch_regions"] == "success" and runs[0]["no_move"] == "success"  # DEGRADED: no move
    assert runs[-1]["request_moves"] == "success" and runs[-1]["no_move"] == "skipped", runs
    assert platform.states()[AZURE] == "UNHEALTHY" and platform.weights()[AZURE] == 100  # requested, not made

    moved = task_states(parse_dag("failover_moves.py", "failover_moves").test())
    assert moved["automatic_failover"] == "success" and moved["wait_for_dns_propagation"] == "success", moved
    assert moved["graceful_failover"] == "skipped" and moved["failback"] == "skipped"
    assert platform.weights() == {AWS: 100, GCP: 100, AZURE: 0}
    assert platform.states()[AZURE] == "FAILOVER"
    again = task_states(parse_dag("failover_moves.py", "failover_moves").test())  # a repeated request
    assert again["no_move"] == "success" and again["automatic_failover"] == "skipped"

    assert [(a["from_state"], a["to_state"]) for a in webhook if a["kind"] == "transition"] == [
        ("HEALTHY", "DEGRADED"),
        ("DEGRADED", "UNHEALTHY"),
        ("UNHEALTHY", "FAILOVER"),
    ]
    unhealthy = next(a for a in webhook if a["to_state"] == "UNHEALTHY")
    assert unhealthy["severity"] == "critical" and unhealthy["evidence"]["verdict"] == "failed"
    assert len(unhealthy["evidence"]["probes"]) == 3


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
