"""Failover alerts: one JSON message per state transition, DNS switch, traffic move, refused move or approval.

Every alert is written to the log; when ``failover.notify_connection`` names an Airflow ``http``
connection, it is also POSTed there as JSON (a chat or paging webhook) through the http provider's hook.
The text is in ``text`` too, which Slack-style incoming webhooks display as is.
"""

from __future__ import annotations

import time

from include.alerts import send_alerts as post_alerts
from include.catalogue import Catalogue
from include.failover.machine import Transition

SEVERITY = {"UNHEALTHY": "critical", "FAILOVER": "critical", "DEGRADED": "warning"}


def transition_alert(transition: Transition, run_id: str | None = None) -> dict:
    """The alert for one state transition, with its reason and evidence."""
    return {
        "kind": "transition",
        "severity": SEVERITY.get(str(transition.to_state), "info"),
        "region": transition.region,
        "from_state": str(transition.from_state),
        "to_state": str(transition.to_state),
        "at": transition.at,
        "text": transition.describe(),
        "evidence": transition.evidence,
        "run_id": run_id,
    }


def refusal_alert(region: str, reason: str, run_id: str | None = None) -> dict:
    """The alert for a traffic move a safety rule refused (nothing was changed)."""
    return {
        "kind": "refused",
        "severity": "critical",
        "region": region,
        "at": time.time(),
        "text": reason,
        "run_id": run_id,
    }


def switch_alert(switch: dict, run_id: str | None = None) -> dict:
    """The alert for a DNS switch the health watch made the moment a region turned UNHEALTHY."""
    return {
        "kind": "switched",
        "severity": "critical",
        "region": switch["region"],
        "at": switch["at"],
        "text": f"{switch['region']}: DNS switched to {', '.join(switch['receivers'])} by the health watch "
        f"(Route 53 change {switch['change_id'] or 'none needed'}); failover_moves checks the receivers and records it",
        "run_id": run_id,
    }


def approval_alert(move: dict, outcome: str, run_id: str | None, approval: dict | None = None) -> dict:
    """The alert for a manual move's approval outcome (rejected, or approved by the deadline's default)."""
    return {
        "kind": "approval",
        "severity": "warning",
        "region": move["region"],
        "at": time.time(),
        "text": f"{move['region']}: manual {move['action']} ({move['strategy']}) {outcome}",
        "approval": approval,
        "run_id": run_id,
    }


def send_alerts(catalogue: Catalogue, alerts: list[dict]) -> int:
    """Log every alert and POST it to ``failover.notify_connection``, if set; the number posted."""
    return post_alerts(catalogue.failover.notify_connection, alerts, "failover")
