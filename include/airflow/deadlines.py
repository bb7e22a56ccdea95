"""The failover_moves DAG's deadline: an alert when a run of moves takes longer than its budget.

``move_deadline(catalogue)`` is the DAG's ``deadline=``: ``failover.move_budget_seconds`` after a run is queued,
the scheduler queues ``move_budget_missed`` (a ``SyncCallback``, run by the executor like a task, with the
connections a task has), which posts an alert through ``include.alerts`` to ``failover.notify_connection``.
A run that finishes within its budget removes its deadline; the alert says the run is still going, not that it failed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

from include.alerts import send_alerts
from include.catalogue import Catalogue


def move_deadline(catalogue: Catalogue) -> DeadlineAlert:
    """The DeadlineAlert for failover_moves: ``failover.move_budget_seconds`` after the run was queued."""
    budget = catalogue.failover.move_budget_seconds
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=budget),
        callback=SyncCallback(
            move_budget_missed,
            kwargs={"budget_seconds": budget, "notify_connection": catalogue.failover.notify_connection},
        ),
        name="move budget",
    )


def move_budget_missed(context: dict, budget_seconds: float, notify_connection: str | None) -> dict:
    """Alert that a run is past its move budget, naming the run, the budget and how long it has taken so far.

    ``context`` is what the scheduler gives a deadline callback: ``dag_run`` (the REST API's DAG run, as JSON)
    and ``deadline`` (``id``, ``deadline_time``).
    """
    run = context["dag_run"]
    now = datetime.now(UTC)
    elapsed = (now - _as_datetime(run["queued_at"])).total_seconds()
    alert = {
        "kind": "deadline_missed",
        "severity": "critical",
        "dag_id": run["dag_id"],
        "run_id": run["dag_run_id"],
        "budget_seconds": budget_seconds,
        "elapsed_seconds": round(elapsed, 1),
        "at": now.timestamp(),
        "text": f"{run['dag_id']} run {run['dag_run_id']} has taken {elapsed:.0f} s since it was queued, over its "
        f"move budget of {budget_seconds:g} s (failover.move_budget_seconds); it is {run['state']}: check its "
        "strategy tasks",
    }
    send_alerts(notify_connection, [alert], "failover")
    return alert


def _as_datetime(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
