"""A manual move's approval: the question asked, the record of the answer, and the moves it lets through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from include.catalogue import Catalogue, load_catalogue
from include.errors import CatalogueError
from include.failover.approval import apply_approval, approval_record, approval_request, subject
from include.failover.machine import State, moved
from include.failover.store import FailoverStore
from include.state.migrate import upgrade_state_db

ANSWERED_AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
FAILOVER = {
    "region": "gcp-europe-west1",
    "action": "failover",
    "strategy": "graceful",
    "reason": "manual failover by an operator: planned maintenance",
    "held": True,
    "override_circuit_breaker": False,
}


def answer(option: str, user: dict | None) -> dict:
    """The human-in-the-loop operator's result, as its XCom holds it."""
    return {"chosen_options": [option], "params_input": {}, "responded_at": ANSWERED_AT, "responded_by_user": user}


@pytest.fixture
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture
def store(tmp_path) -> FailoverStore:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    upgrade_state_db(engine)
    return FailoverStore(engine)


def test_subject_says_the_move_and_a_circuit_breaker_override():
    assert subject(FAILOVER) == "Fail over gcp-europe-west1 (graceful)?"
    overriding = {**FAILOVER, "strategy": "immediate", "override_circuit_breaker": True}
    assert subject(overriding) == "Fail over gcp-europe-west1 (immediate), overriding the circuit breaker?"
    failback = {"region": "azure-eastus", "action": "failback", "strategy": "graceful", "reason": "done"}
    assert subject(failback) == "Fail back azure-eastus (graceful)?"


def test_request_body_gives_the_reason_the_state_the_breaker_and_the_deadline(catalogue, store):
    record = store.load([FAILOVER["region"]])[FAILOVER["region"]]
    store.save([moved(record, State.DEGRADED, "slow answers", {}, 1.0)[0]], [])
    store.start_failover("aws-us-west-2", 1.0, "test", "automatic", limit=3)
    request = approval_request(catalogue, store, {**FAILOVER, "override_circuit_breaker": True})
    assert request["subject"] == "Fail over gcp-europe-west1 (graceful), overriding the circuit breaker?"
    body = request["body"]
    assert "drain its traffic to the other healthy regions (graceful)" in body
    assert "- Reason: manual failover by an operator: planned maintenance" in body
    assert "- Current state: DEGRADED (slow answers)" in body
    assert "1 of 3 failovers started in the last hour; **this move overrides the circuit breaker**" in body
    assert "No answer within 900 s: **Reject** applies" in body


def test_an_approval_records_who_and_when():
    record = approval_record(answer("Approve", {"id": "7", "name": "alice"}))
    assert record == {
        "decision": "approve",
        "by": "alice",
        "by_id": "7",
        "at": "2026-03-01T12:30:00+00:00",
        "deadline_applied": False,
    }


def test_a_default_applied_at_the_deadline_has_nobody_as_its_author():
    record = approval_record(answer("Reject", None))
    assert record["decision"] == "reject" and record["by"] is None and record["deadline_applied"] is True


def test_an_answer_outside_the_options_is_refused():
    with pytest.raises(ValueError, match=r"approval answered \['Maybe'\]; expected one of Approve, Reject"):
        approval_record(answer("Maybe", None))


def test_an_approved_move_carries_its_approval_and_sends_no_alert():
    decided = apply_approval({"actions": [FAILOVER], "alerts": []}, answer("Approve", {"id": "7", "name": "alice"}))
    [move] = decided["actions"]
    assert move == {**FAILOVER, "approval": approval_record(answer("Approve", {"id": "7", "name": "alice"}))}
    assert decided["alerts"] == []


def test_a_rejected_move_is_dropped_and_the_alert_names_who_rejected_it():
    decided = apply_approval({"actions": [FAILOVER], "alerts": []}, answer("Reject", {"id": "8", "name": "bob"}), "r1")
    assert decided["actions"] == []
    [alert] = decided["alerts"]
    assert alert["kind"] == "approval" and alert["run_id"] == "r1" and alert["approval"]["by"] == "bob"
    assert alert["text"] == (
        "gcp-europe-west1: manual failover (graceful) not made: rejected by bob at 2026-03-01T12:30:00+00:00"
    )


def test_a_deadline_default_is_alerted_whichever_way_it_goes():
    rejected = apply_approval({"actions": [FAILOVER], "alerts": []}, answer("Reject", None))
    assert rejected["actions"] == []
    assert (
        "not made: nobody answered by the approval deadline, so the default applied: rejected"
        in (rejected["alerts"][0]["text"])
    )
    approved = apply_approval({"actions": [FAILOVER], "alerts": []}, answer("Approve", None))
    assert approved["actions"][0]["approval"]["deadline_applied"] is True
    assert "going ahead: nobody answered by the approval deadline" in approved["alerts"][0]["text"]


def test_without_an_answer_nothing_moves():
    assert apply_approval({"actions": [], "alerts": []}, None) == {"actions": [], "alerts": []}
    skipped = apply_approval({"actions": [FAILOVER], "alerts": []}, None)  # the approval skipped by hand
    assert skipped["actions"] == [] and "not made: nobody approved it" in skipped["alerts"][0]["text"]


def test_answered_at_may_come_back_as_text():
    later = (ANSWERED_AT + timedelta(minutes=1)).isoformat()
    assert approval_record({**answer("Approve", None), "responded_at": later})["at"] == "2026-03-01T12:31:00+00:00"


def test_a_move_budget_shorter_than_a_gradual_move_s_pauses_is_refused(tmp_path, catalogue):
    import yaml

    data = catalogue.model_dump(mode="json", exclude_none=True)
    data["failover"].update(step_pause_seconds=60, move_budget_seconds=200)
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogueError, match=r"move_budget_seconds 200 is not longer than a gradual move's pauses"):
        load_catalogue(path)
