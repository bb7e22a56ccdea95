"""Traffic moves as Airflow tasks: ``TrafficShiftOperator``, ``FailoverNotifier`` and ``add_traffic_moves``.

``add_traffic_moves`` wires the same branch into the failover_moves DAG and the manual failover DAG: after the task
that lists the moves (``{"actions": [{"region", "action", "strategy", ...}]}``), a branch picks the strategy
tasks those moves need (automatic, graceful, immediate, failback) or ``no_move``. Each strategy task moves
its regions one after another, so the check that the last healthy region is never drained sees every earlier
move; the graceful drain and the failback defer between steps instead of sleeping on a worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.bases.notifier import BaseNotifier
from airflow.triggers.base import BaseTrigger, TriggerEvent

from include.airflow.dns_propagation import DnsPropagationSensor

MOVE_TASKS = {
    ("failover", "automatic"): "automatic_failover",
    ("failover", "graceful"): "graceful_failover",
    ("failover", "immediate"): "immediate_failover",
    ("failback", "graceful"): "failback",
}


class FailoverNotifier(BaseNotifier):
    """Send the alerts a task returned (transitions, moves, refusals), or its failure, through ``send_alerts``."""

    def notify(self, context) -> None:
        from include.catalogue import load_catalogue
        from include.failover.notify import send_alerts

        ti = context["ti"]
        if context.get("exception") is not None:
            alerts = [
                {
                    "kind": "task_failed",
                    "severity": "critical",
                    "text": f"{ti.dag_id}.{ti.task_id} failed: {context['exception']}",
                    "run_id": context.get("run_id"),
                }
            ]
        else:
            alerts = (ti.xcom_pull(task_ids=ti.task_id) or {}).get("alerts", [])
        send_alerts(load_catalogue(), alerts)


class PauseTrigger(BaseTrigger):
    """Wait ``seconds`` in the triggerer, then hand ``carry`` (a move's progress) back to the task."""

    def __init__(self, seconds: float, carry: dict):
        super().__init__()
        self.seconds = seconds
        self.carry = carry

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("include.airflow.traffic.PauseTrigger", {"seconds": self.seconds, "carry": self.carry})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await asyncio.sleep(self.seconds)
        yield TriggerEvent(self.carry)


class TrafficShiftOperator(BaseOperator):
    """Make the moves of one kind and strategy listed by ``actions_task_id``, deferring between steps."""

    def __init__(self, *, kind: str, strategy: str, actions_task_id: str, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.strategy = strategy
        self.actions_task_id = actions_task_id

    def execute(self, context) -> dict:
        listed = context["ti"].xcom_pull(task_ids=self.actions_task_id)["actions"]
        queue = [a for a in listed if a["action"] == self.kind and a["strategy"] == self.strategy]
        self.log.info("Moves to make: %s", queue)
        return self._run(context, queue, None, [])

    def resume(self, context, event: dict) -> dict:
        from include.failover.strategies import ShiftPlan

        return self._run(context, event["queue"], ShiftPlan.from_dict(event["plan"]), event["results"])

    def _run(self, context, queue: list[dict], plan, results: list[dict]) -> dict:
        from include.errors import MoveRefused
        from include.failover.notify import refusal_alert, transition_alert
        from include.failover.strategies import finish, plan_move, take_step

        controller = self._controller()
        run_id = context["run_id"]
        while plan is not None or queue:
            if plan is None:
                action = queue.pop(0)
                try:
                    plan = plan_move(controller, action)
                except MoveRefused as exc:
                    self.log.error("%s", exc)
                    results.append(
                        {
                            "region": action["region"],
                            "refused": str(exc),
                            "alert": refusal_alert(action["region"], str(exc), run_id),
                        }
                    )
                    continue
            try:
                plan, outcome = take_step(controller, plan)
            except MoveRefused as exc:
                self.log.error("%s", exc)
                results.append(
                    {
                        "region": plan.region,
                        "refused": str(exc),
                        "alert": refusal_alert(plan.region, str(exc), run_id),
                        "changes": plan.changes,
                    }
                )
                plan = None
                continue
            if outcome == "abandoned" or plan.done:
                transition = finish(controller, plan, outcome, run_id)
                self.log.warning("%s", transition.describe())
                results.append(
                    {"region": plan.region, "changes": plan.changes, "alert": transition_alert(transition, run_id)}
                )
                plan = None
                continue
            pause = controller.catalogue.failover.step_pause_seconds
            self.log.info("Next step of %s in %ss (%s)", plan.region, pause, outcome)
            self.defer(
                trigger=PauseTrigger(pause, {"queue": queue, "plan": plan.as_dict(), "results": results}),
                method_name="resume",
            )
        changes = [change for result in results for change in result.get("changes", [])]
        return {
            "moves": [{k: v for k, v in r.items() if k != "alert"} for r in results],
            "alerts": [r["alert"] for r in results],
            "last_change_id": changes[-1] if changes else "",
        }

    def _controller(self):
        from include.catalogue import load_catalogue
        from include.failover.store import FailoverStore
        from include.failover.traffic import TrafficController

        catalogue = load_catalogue()
        return TrafficController(catalogue, FailoverStore.from_connection(catalogue.replication.state_connection))


def add_traffic_moves(actions_task, dns_connection: str, ttl_seconds: int) -> None:
    """Wire the strategy branch after ``actions_task`` (a task whose return value lists the moves)."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import task

    notifier = FailoverNotifier()
    actions_task_id = actions_task.operator.task_id

    @task.branch(task_id="choose_moves")
    def choose_moves(listed: dict) -> list[str]:
        """The strategy tasks the listed moves need, or ``no_move``."""
        chosen = sorted({MOVE_TASKS[(a["action"], a["strategy"])] for a in listed["actions"]})
        return chosen or ["no_move"]

    branch = choose_moves(actions_task)
    moves = {
        task_id: TrafficShiftOperator(
            task_id=task_id,
            kind=kind,
            strategy=strategy,
            actions_task_id=actions_task_id,
            on_success_callback=notifier,
            on_failure_callback=notifier,
        )
        for (kind, strategy), task_id in MOVE_TASKS.items()
    }
    wait_for_dns = DnsPropagationSensor(
        task_id="wait_for_dns_propagation",
        change_id="{{ ti.xcom_pull(task_ids='automatic_failover')['last_change_id'] }}",
        aws_conn_id=dns_connection,
        ttl_seconds=ttl_seconds,
    )
    branch >> [*moves.values(), EmptyOperator(task_id="no_move")]
    moves["automatic_failover"] >> wait_for_dns
