"""Alerts: plain JSON messages, logged, and POSTed to a webhook when an Airflow ``http`` connection names one.

An alert is a dict with at least ``severity`` and ``text`` (Slack-style incoming webhooks display ``text``
as is). Failover and cost alerts both go out this way, each to the connection its catalogue section names.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def send_alerts(conn_id: str | None, alerts: list[dict], topic: str) -> int:
    """Log every alert and POST it to ``conn_id``, if set; the number posted."""
    for alert in alerts:
        log.warning("%s alert [%s] %s", topic, alert["severity"], alert["text"])
    if not conn_id or not alerts:
        return 0
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="POST", http_conn_id=conn_id)
    for alert in alerts:
        hook.run(endpoint="", json=alert, extra_options={"timeout": 10})
    return len(alerts)
