"""What the failover DAGs' own tasks do: persist a watch's observations, list the moves due, and vet an
operator's manual move.

Each returns ``{"actions": [...], "alerts": [...]}``: the moves to make (each ``region``, ``action``
``failover`` or ``failback``, ``strategy``) for the strategy branch, and the alerts for the notifier.
"""

from __future__ import annotations

import logging

from include.catalogue import Catalogue
from include.errors import ConcurrentStateChange
from include.failover.machine import ACTIONS, RegionRecord, State, Transition
from include.failover.notify import refusal_alert, transition_alert
from include.failover.store import FailoverStore, format_states

log = logging.getLogger(__name__)


def record_observations(catalogue: Catalogue, store: FailoverStore, event: dict, run_id: str) -> dict:
    """Persist the records and transitions a health watch produced; list the moves their states ask for.

    A region left UNHEALTHY or RECOVERING by an earlier refused or interrupted move is listed again, so the
    move is requested again at least once per watch.
    """
    records = [RegionRecord.from_dict(data) for data in event["records"]]
    transitions = [Transition.from_dict(data) for data in event["transitions"]]
    try:
        store.save(records, transitions, run_id)
    except ConcurrentStateChange as exc:
        log.warning("Observations not recorded: %s", exc)
        return {"actions": [], "alerts": [], "conflict": str(exc)}
    for transition in transitions:
        log.warning("%s\n  evidence: %s", transition.describe(), transition.evidence)
    log.info("Failover state:\n%s", format_states({r.region: r for r in records}))
    return {"actions": _due(catalogue, records), "alerts": [transition_alert(t, run_id) for t in transitions]}


def moves_due(catalogue: Catalogue, store: FailoverStore) -> dict:
    """The moves the persisted states ask for now: a failover of each UNHEALTHY region (with its strategy),
    a gradual failback of each RECOVERING one. The store decides, so requests that arrive together, or a
    request whose move another run already made, never move traffic twice."""
    records = store.load([r.name for r in catalogue.regions])
    log.info("Failover state:\n%s", format_states(records))
    return {"actions": _due(catalogue, list(records.values())), "alerts": []}


def _due(catalogue: Catalogue, records: list[RegionRecord]) -> list[dict]:
    return [
        {
            "region": record.region,
            "action": ACTIONS[record.state],
            "strategy": catalogue.strategy_of(catalogue.region(record.region))
            if record.state == State.UNHEALTHY
            else "graceful",
            "reason": "health probes found it unhealthy" if record.state == State.UNHEALTHY else "stable again",
        }
        for record in records
        if record.state in ACTIONS
    ]


def manual_move(catalogue: Catalogue, store: FailoverStore, params: dict, run_id: str) -> dict:
    """An operator's failover or failback of one region, checked against its current state.

    ``params``: ``region``, ``action`` (``failover`` or ``failback``), ``strategy`` (for a failover),
    ``reason``, ``override_circuit_breaker``. A manual failover holds the region out: it is not failed
    back automatically, only by a manual failback.
    """
    region = catalogue.region(params["region"]).name
    action = params["action"]
    reason = f"manual {action} by an operator: {params['reason']}"
    record = store.load([r.name for r in catalogue.regions])[region]
    if action == "failover":
        if record.state == State.FAILOVER:
            refusal = f"{region} is already failed over ({record.reason}); nothing to do"
            return {"actions": [], "alerts": [refusal_alert(region, refusal, run_id)]}
        move = {
            "region": region,
            "action": "failover",
            "strategy": params["strategy"],
            "reason": reason,
            "held": True,
            "override_circuit_breaker": params["override_circuit_breaker"],
        }
    elif action == "failback":
        if record.state not in (State.FAILOVER, State.RECOVERING):
            refusal = f"{region} is {record.state}, not failed over; nothing to fail back"
            return {"actions": [], "alerts": [refusal_alert(region, refusal, run_id)]}
        move = {"region": region, "action": "failback", "strategy": "graceful", "reason": reason}
    else:
        raise ValueError(f"unknown action {action!r}; expected failover or failback")
    log.info("Manual move: %s", move)
    return {"actions": [move], "alerts": []}
