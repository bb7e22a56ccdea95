"""Failover alerts: one JSON message per state transition, traffic move or refused move.

Every alert is written to the log; when ``failover.notify_connection`` names an Airflow ``http``
connection, it is also POSTed there as JSON (a chat or paging webhook) through the http provider's hook.
The text is in ``text`` too, which Slack-style incoming webhooks display as is.
"""

from __future__ import annotations

import logging
import time

from include.catalogue import Catalogue
from include.failover.machine import Transition

log = logging.getLogger(__name__)
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


def send_alerts(catalogue: Catalogue, alerts: list[dict]) -> int:
    """Log every alert and POST it to the notify connection, if one is set; the number sent to it."""
    for alert in alerts:
        log.warning("failover alert [%s] %s", alert["severity"], alert["text"])
    conn_id = catalogue.failover.notify_connection
    if not conn_id or not alerts:
        return 0
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="POST", http_conn_id=conn_id)
    for alert in alerts:
        hook.run(endpoint="", json=alert, extra_options={"timeout": 10})
    return len(alerts)
