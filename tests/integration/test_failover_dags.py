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
from tests.integration.helpers import parse_dag, task_states, without_deadline

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

    moved = task_states(without_deadline(parse_dag("failover_moves.py", "failover_moves")).test())
    assert moved["automatic_failover"] == "success" and moved["wait_for_dns_propagation"] == "success", moved
    assert moved["graceful_failover"] == "skipped" and moved["failback"] == "skipped"
    assert platform.weights() == {AWS: 100, GCP: 100, AZURE: 0}
    assert platform.states()[AZURE] == "FAILOVER"
    failover = platform.store.transitions(region=AZURE)[-1]
    assert failover.evidence["switched_by_watch"]["change_id"] == switch["change_id"]
    again = task_states(without_deadline(parse_dag("failover_moves.py", "failover_moves")).test())  # a repeated request
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


@pytest.mark.timeout(300)  # a lost answer would leave dag.test() waiting
def test_manual_failover_and_failback(airflow_db, platform, webhook, answer_approval):
    asked = answer_approval(approval_by("bob"))  # each move waits for a person's approval
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
    assert platform.store.transitions(region=GCP)[-1].evidence["approval"]["by"] == "bob"
    assert asked["subject"] == f"Fail back {GCP} (graceful)?" and "error" not in asked


def test_manual_failback_of_a_serving_region_is_refused_and_alerted(airflow_db, platform, webhook):
    conf = {"region": AWS, "action": "failback", "strategy": "graceful", "reason": "by mistake"}
    states = task_states(parse_dag("manual_failover.py", "manual_failover").test(run_conf=conf))
    assert states["no_move"] == "success"
    assert webhook[-1]["kind"] == "refused" and "is HEALTHY, not failed over" in webhook[-1]["text"]
    assert set(platform.weights().values()) == {100}


# Approval of manual moves (human-in-the-loop) and failover_moves' move deadline.

APPROVAL_SECONDS = 3


@pytest.fixture
def approval_catalogue(platform, monkeypatch, tmp_path):
    """The platform's catalogue with an approval deadline of seconds, set as the DAGs' catalogue."""
    import yaml

    from include.catalogue import load_catalogue

    data = yaml.safe_load(platform.catalogue_file.read_text())
    data["failover"]["approval_timeout_seconds"] = APPROVAL_SECONDS
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOGUE_ENV, str(path))
    return load_catalogue(path)


@pytest.fixture
def answer_approval():
    """Answer manual_failover's ``approve_move`` from a thread while ``dag.test()`` waits: the request it saw.

    ``dag.test()`` parks a human-in-the-loop task in ``awaiting_input`` and only waits; in Airflow the
    answer comes from outside the run, from the REST API or the scheduler's deadline sweep, through the
    shared metadata database. ``answer(run_id)`` stands in for one of those; it is called every half second
    while the request waits. Build it before (imports in a thread can deadlock with the main thread's).
    """
    import logging
    import threading
    import time

    stop = threading.Event()
    asked: dict = {}
    threads = []

    def respond(answer) -> dict:
        awaiting_approval()  # SQLAlchemy configures its mappers here, not in the thread while a DAG file imports

        def loop():
            try:
                while not stop.is_set():
                    if request := awaiting_approval():
                        asked.update(request)
                        answer(request["run_id"])
                    time.sleep(0.5)
            except Exception as exc:  # the run would wait for ever: say why at once
                logging.getLogger(__name__).exception("answering approve_move failed")
                asked["error"] = exc

        threads.append(threading.Thread(target=loop, daemon=True))
        threads[-1].start()
        return asked

    yield respond
    stop.set()
    for thread in threads:
        thread.join(timeout=30)


def awaiting_approval() -> dict | None:
    """The newest ``approve_move`` waiting for an answer: its run, subject, body and when it asked."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        row = (
            session.query(TaskInstance.run_id, HITLDetail.subject, HITLDetail.body, HITLDetail.created_at)
            .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
            .filter(
                TaskInstance.dag_id == "manual_failover",
                TaskInstance.task_id == "approve_move",
                TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
            )
            .order_by(HITLDetail.created_at.desc())
            .first()
        )
    return dict(zip(("run_id", "subject", "body", "asked_at"), row, strict=True)) if row else None


def deadline_sweep():
    """What the scheduler does every ``trigger_timeout_check_interval``: answer expired requests with their defaults."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    scheduler = SchedulerJobRunner(job=Job(), executors=[])
    return lambda run_id: scheduler.check_awaiting_input_timeouts()


def approval_by(user: str):
    """An approval by ``user`` through the REST API (the Required Actions page sends the same request)."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    client = TestClient(create_app("core"))
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=user, role="admin"))

    def approve(run_id: str) -> None:
        response = client.patch(
            f"/api/v2/dags/manual_failover/dagRuns/{run_id}/taskInstances/approve_move/-1/hitlDetails",
            json={"chosen_options": ["Approve"], "params_input": {}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text

    return approve


def test_the_approval_waits_outside_the_dns_pool_with_the_catalogue_s_deadline(approval_catalogue):
    from datetime import timedelta

    from airflow.providers.standard.operators.hitl import HITLOperator

    from include.airflow.defaults import DNS_MOVES_POOL

    approve_move = parse_dag("manual_failover.py", "manual_failover").get_task("approve_move")
    assert isinstance(approve_move, HITLOperator) and approve_move.pool != DNS_MOVES_POOL
    assert approve_move.response_timeout == timedelta(seconds=APPROVAL_SECONDS) and approve_move.defaults == ["Reject"]


@pytest.mark.timeout(180)  # a lost answer would leave dag.test() waiting
def test_an_unanswered_manual_failover_is_rejected_by_default_at_the_deadline(
    airflow_db, platform, approval_catalogue, webhook, answer_approval
):
    """Nobody answers: the scheduler's deadline sweep applies the default, reject (run from a thread here, as
    ``dag.test()`` has no scheduler), and nothing moves."""
    from datetime import datetime

    asked = answer_approval(deadline_sweep())
    conf = {"region": GCP, "action": "failover", "strategy": "immediate", "reason": "planned maintenance"}
    run = parse_dag("manual_failover.py", "manual_failover").test(run_conf=conf)
    states = task_states(run)
    assert states["approve_move"] == "success" and states["no_move"] == "success", states
    assert states["immediate_failover"] == "skipped"
    assert asked["subject"] == f"Fail over {GCP} (immediate)?" and "Current state: HEALTHY" in asked["body"]
    assert set(platform.weights().values()) == {100} and platform.states()[GCP] == "HEALTHY"
    [alert] = [a for a in webhook if a["kind"] == "approval"]
    assert alert["approval"]["deadline_applied"] and alert["approval"]["by"] is None
    assert alert["text"].endswith(
        "not made: nobody answered by the approval deadline, so the default applied: rejected"
    )
    assert "error" not in asked
    waited = datetime.fromisoformat(alert["approval"]["at"]) - asked["asked_at"]
    assert waited.total_seconds() >= APPROVAL_SECONDS


@pytest.mark.timeout(180)  # a lost answer would leave dag.test() waiting
def test_an_approved_manual_failover_records_who_approved_it_and_when(
    airflow_db, platform, approval_catalogue, webhook, answer_approval
):
    """alice approves through the REST API (in-process, on the same metadata database) while the run waits."""
    asked = answer_approval(approval_by("alice"))
    conf = {"region": GCP, "action": "failover", "strategy": "immediate", "reason": "planned maintenance"}
    states = task_states(parse_dag("manual_failover.py", "manual_failover").test(run_conf=conf))
    assert states["immediate_failover"] == "success", states
    assert platform.weights() == {AWS: 100, GCP: 0, AZURE: 100}
    failover = platform.store.transitions(region=GCP)[-1]
    assert str(failover.to_state) == "FAILOVER"
    approval = failover.evidence["approval"]
    assert approval["decision"] == "approve" and approval["by"] == "alice" and not approval["deadline_applied"]
    assert approval["at"] and not [a for a in webhook if a["kind"] == "approval"]
    assert "error" not in asked


def test_the_move_deadline_serialises_and_its_callback_alerts_the_run_and_its_budget(approval_catalogue, webhook):
    """failover_moves' DeadlineAlert as the dag-processor stores it and the scheduler reads it back, then its
    callback run as the executor runs it, with the context the scheduler gives it."""
    from datetime import UTC, datetime, timedelta

    import structlog
    from airflow.sdk.execution_time.callback_supervisor import execute_callback
    from airflow.serialization.decoders import decode_deadline_alert
    from airflow.serialization.serialized_objects import DagSerialization

    from include.catalogue import load_catalogue

    budget = load_catalogue().failover.move_budget_seconds  # the test's catalogue, which alerts to the webhook
    failover_moves = parse_dag("failover_moves.py", "failover_moves")

    [stored] = DagSerialization.to_dict(failover_moves)["dag"]["deadline"]
    alert = decode_deadline_alert(stored)
    assert type(alert.reference).__name__ == "DagRunQueuedAtDeadline"
    assert alert.interval == timedelta(seconds=budget)
    queued = datetime.now(UTC) - timedelta(seconds=budget + 60)
    context = {
        "dag_run": {
            "dag_id": "failover_moves",
            "dag_run_id": "run-7",
            "queued_at": queued.isoformat(),
            "state": "running",
        },
        "deadline": {"id": "d-1", "deadline_time": queued + timedelta(seconds=budget)},
    }
    ok, error = execute_callback(
        alert.callback.path, {**alert.callback.kwargs, "context": context}, "", None, structlog.get_logger()
    )
    assert ok, error
    [sent] = webhook
    assert sent["kind"] == "deadline_missed" and sent["run_id"] == "run-7" and sent["budget_seconds"] == budget
    assert sent["elapsed_seconds"] >= budget + 60
    assert sent["text"].startswith(f"failover_moves run run-7 has taken {budget + 60:.0f} s since it was queued")
