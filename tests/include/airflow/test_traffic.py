"""The traffic-shift operator: it defers to a ``TimeDeltaTrigger`` between steps, carrying its progress in the
deferral's kwargs, so a resumed task (a new operator object, as on another worker) goes on where it stopped."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import timezone
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.serde import deserialize, serialize

from include.airflow.traffic import TrafficShiftOperator
from include.catalogue import load_catalogue
from include.clouds.route53 import TrafficState
from include.failover.machine import State, moved
from include.failover.store import FailoverStore
from include.failover.traffic import TrafficController
from include.state.migrate import upgrade_state_db

CATALOGUE = load_catalogue()
AWS, GCP, AZURE = "aws-us-west-2", "gcp-europe-west1", "azure-eastus"


class MemoryDns:
    """Route 53's weighted records in memory; every change that moves a weight gets an id.

    A double, so this unit test needs no emulator: the same operator runs against moto's Route 53 in
    tests/integration/test_failover_dags.py and tests/integration/test_route53_traffic.py.
    """

    def __init__(self, weights: dict[str, int]):
        self.weights = dict(weights)
        self.changes: list[dict[str, int]] = []

    def read(self) -> TrafficState:
        receiving = frozenset(name for name, weight in self.weights.items() if weight > 0)
        return TrafficState(dict(self.weights), receiving, {"PRIMARY": min(receiving), "SECONDARY": max(receiving)})

    def apply(self, weights: dict[str, int], serving: set[str]) -> str | None:
        if {**self.weights, **weights} == self.weights:
            return None
        self.weights.update(weights)
        self.changes.append(dict(self.weights))
        return f"/change/C{len(self.changes)}"


class ProbedOk(TrafficController):
    """Every region answers its probes ``ok``."""

    def check_receivers(self, receivers: list[str]) -> dict[str, str]:
        return dict.fromkeys(receivers, "ok")


class ListedMoves:
    """The task instance of a run whose ``list_moves`` task returned ``actions``."""

    def __init__(self, actions: list[dict]):
        self.actions = actions

    def xcom_pull(self, task_ids: str) -> dict:
        assert task_ids == "list_moves"
        return {"actions": self.actions}


@pytest.fixture
def controller(tmp_path, monkeypatch) -> ProbedOk:
    """GCP failed over (weight 0, FAILOVER), the others serving; the operator's controller for the test."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    upgrade_state_db(engine)
    store = FailoverStore(engine)
    failed, transition = moved(store.load([AWS, GCP, AZURE])[GCP], State.FAILOVER, "drained", {}, 1.0)
    store.save([failed], [transition])
    controller = ProbedOk(CATALOGUE, store, dns=MemoryDns({AWS: 100, GCP: 0, AZURE: 100}))
    monkeypatch.setattr(TrafficShiftOperator, "_controller", lambda self: controller)
    return controller


def failback_operator() -> TrafficShiftOperator:
    return TrafficShiftOperator(task_id="failback", kind="failback", strategy="graceful", actions_task_id="list_moves")


def run_to_the_end(context: dict) -> tuple[dict, list[TaskDeferred]]:
    """Execute, then resume from each deferral (a new operator each time) until the task returns.

    The kwargs go through serde as the triggerer stores and hands them back. Returns (result, deferrals).
    """
    deferrals: list[TaskDeferred] = []
    try:
        return failback_operator().execute(context), deferrals
    except TaskDeferred as deferred:
        deferrals.append(deferred)
    while True:
        deferred = deferrals[-1]
        kwargs = deserialize(serialize(deferred.kwargs))
        try:
            resumed = getattr(failback_operator(), deferred.method_name)
            return resumed(context, event=deferred.trigger.moment, **kwargs), deferrals
        except TaskDeferred as again:
            deferrals.append(again)


def test_failback_defers_between_steps_and_resumes_from_the_deferral_kwargs(controller):
    action = {"region": GCP, "action": "failback", "strategy": "graceful", "reason": "stable again"}

    result, deferrals = run_to_the_end({"ti": ListedMoves([action]), "run_id": "run-1"})

    pause = CATALOGUE.failover.step_pause_seconds
    for deferred in deferrals:
        assert deferred.method_name == "resume" and isinstance(deferred.trigger, DateTimeTrigger)
        assert pause - 1 < (deferred.trigger.moment - timezone.utcnow()).total_seconds() <= pause
    assert [d.kwargs["progress"]["plan"]["step"] for d in deferrals] == [1, 2, 3]
    assert [change[GCP] for change in controller.dns.changes] == [25, 50, 75, 100]
    assert result["moves"] == [{"region": GCP, "changes": ["/change/C1", "/change/C2", "/change/C3", "/change/C4"]}]
    assert result["last_change_id"] == "/change/C4"
    assert result["alerts"][0]["text"].startswith(f"{GCP}: FAILOVER -> HEALTHY: failback complete")
    assert controller.records()[GCP].state == State.HEALTHY


def test_a_refused_move_is_returned_with_its_alert_without_deferring(controller):
    action = {"region": AWS, "action": "failback", "strategy": "graceful", "reason": "by mistake"}

    result, deferrals = run_to_the_end({"ti": ListedMoves([action]), "run_id": "run-1"})

    assert deferrals == []
    assert result["moves"] == [{"region": AWS, "refused": f"not failing back {AWS}: it is HEALTHY, not failed over"}]
    assert result["alerts"][0]["kind"] == "refused" and result["last_change_id"] == ""
    assert controller.dns.changes == []
