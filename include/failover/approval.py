"""A person's approval of a manual move: what they are asked, and what their answer (or the deadline) decided.

manual_failover asks through Airflow's human-in-the-loop operator, with the options ``Approve`` and ``Reject``.
When nobody answers within ``failover.approval_timeout_seconds``, the scheduler answers
``failover.approval_default`` for them, with no responding user. ``apply_approval`` keeps an approved move,
with its approval record (``decision``, ``by``, ``by_id``, ``at``, ``deadline_applied``) under ``approval``,
which the move's FAILOVER transition keeps as evidence; a rejected move is dropped, with an alert.
"""

from __future__ import annotations

import time
from datetime import datetime

from include.catalogue import Catalogue
from include.failover.machine import RegionRecord
from include.failover.notify import approval_alert
from include.failover.store import FailoverStore

OPTIONS = {"approve": "Approve", "reject": "Reject"}  # decision -> the option the approver picks
HOUR = 3600.0


def subject(move: dict) -> str:
    """The one-line question: the move, its strategy, and whether it overrides the circuit breaker."""
    verb = {"failover": "Fail over", "failback": "Fail back"}[move["action"]]
    override = ", overriding the circuit breaker" if move.get("override_circuit_breaker") else ""
    return f"{verb} {move['region']} ({move['strategy']}){override}?"


def body(catalogue: Catalogue, move: dict, record: RegionRecord, failovers_last_hour: int) -> str:
    """The details to decide on (Markdown): what happens, why, the region's state, the breaker, the deadline."""
    settings = catalogue.failover
    if move["action"] == "failover":
        happens = (
            f"drain its traffic to the other healthy regions ({move['strategy']}), held out until a manual failback"
        )
    else:
        happens = "bring its traffic back in steps, checking the region before each"
    breaker = f"{failovers_last_hour} of {settings.max_failovers_per_hour} failovers started in the last hour"
    if move.get("override_circuit_breaker"):
        breaker += "; **this move overrides the circuit breaker**"
    default = OPTIONS[settings.approval_default]
    return "\n".join(
        [
            f"**{move['region']}**: {happens}.",
            "",
            f"- Reason: {move['reason']}",
            f"- Current state: {record.state}" + (f" ({record.reason})" if record.reason else ""),
            f"- Circuit breaker: {breaker}",
            f"- No answer within {settings.approval_timeout_seconds:g} s: **{default}** applies",
        ]
    )


def approval_request(catalogue: Catalogue, store: FailoverStore, move: dict) -> dict:
    """The ``subject`` and ``body`` asking to approve ``move``, with the region's state read now."""
    record = store.load([move["region"]])[move["region"]]
    failovers = len(store.failovers_started(time.time() - HOUR))
    return {
        "subject": subject(move),
        "body": body(catalogue, move, record, failovers),
    }


def approval_record(result: dict) -> dict:
    """The record of the human-in-the-loop operator's result: who decided what, when, and whether by deadline.

    ``result`` has ``chosen_options``, ``responded_at`` and ``responded_by_user`` (``{"id", "name"}``; None
    when the scheduler applied the default at the deadline).
    """
    decisions = {option: decision for decision, option in OPTIONS.items()}
    chosen = result["chosen_options"]
    if len(chosen) != 1 or chosen[0] not in decisions:
        raise ValueError(f"approval answered {chosen!r}; expected one of {', '.join(OPTIONS.values())}")
    user = result.get("responded_by_user")
    at = result["responded_at"]
    return {
        "decision": decisions[chosen[0]],
        "by": user["name"] if user else None,
        "by_id": user["id"] if user else None,
        "at": at.isoformat() if isinstance(at, datetime) else str(at),
        "deadline_applied": user is None,
    }


def apply_approval(listed: dict, result: dict | None, run_id: str | None = None) -> dict:
    """The moves ``listed`` (``check_move``'s result) that the approval ``result`` lets through, and its alerts.

    Approved: each move carries the record under ``approval``. Rejected: no moves, and an alert naming who
    rejected them or that the deadline applied the default. ``result`` None (nobody was asked, as there was
    nothing to approve, or the approval task was skipped by hand): no moves.
    """
    moves = listed["actions"]
    if result is None:
        return {"actions": [], "alerts": [approval_alert(m, "not made: nobody approved it", run_id) for m in moves]}
    record = approval_record(result)
    decided = {"approve": "approved", "reject": "rejected"}[record["decision"]]
    if record["deadline_applied"]:
        why = f"nobody answered by the approval deadline, so the default applied: {decided}"
    else:
        why = f"{decided} by {record['by']} at {record['at']}"
    if record["decision"] == "reject":
        return {"actions": [], "alerts": [approval_alert(m, f"not made: {why}", run_id, record) for m in moves]}
    alerts = (
        [approval_alert(m, f"going ahead: {why}", run_id, record) for m in moves] if record["deadline_applied"] else []
    )
    return {"actions": [{**move, "approval": record} for move in moves], "alerts": alerts}
