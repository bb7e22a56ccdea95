"""What the failover DAGs' own tasks do: list the moves due (with the alerts for what the health watch
reported), and vet an operator's manual move.

Each returns ``{"actions": [...], "alerts": [...]}``: the moves to make (each ``region``, ``action``
``failover`` or ``failback``, ``strategy``) for the strategy branch, and the alerts for the notifier.
"""

from __future__ import annotations

import logging

from include.catalogue import Catalogue
from include.failover.machine import ACTIONS, RegionRecord, State, Transition
from include.failover.notify import refusal_alert, switch_alert, transition_alert
from include.failover.store import FailoverStore, format_states

log = logging.getLogger(__name__)


def moves_due(catalogue: Catalogue, store: FailoverStore, reports: list[dict], run_id: str | None = None) -> dict:
    """The moves the persisted states ask for now, and the alerts for what the health watch reported.

    A failover of each UNHEALTHY region (with its strategy; the watch may already have made its DNS switch),
    a gradual failback of each RECOVERING one. The store decides, not the reports, so reports that arrive
    together, or a report whose move another run already made, never move traffic twice.
    """
    records = store.load([r.name for r in catalogue.regions])
    log.info("Failover state:\n%s", format_states(records))
    alerts = []
    for report in reports:
        for data in report.get("transitions", []):
            transition = Transition.from_dict(data)
            log.warning("%s\n  evidence: %s", transition.describe(), transition.evidence)
            alerts.append(transition_alert(transition, run_id))
        alerts.extend(switch_alert(switch, run_id) for switch in report.get("switches", []))
        alerts.extend(refusal_alert(r["region"], r["refused"], run_id) for r in report.get("refusals", []))
    return {"actions": _due(catalogue, list(records.values())), "alerts": alerts}


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
