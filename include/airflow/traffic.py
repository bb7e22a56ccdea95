"""Traffic moves as Airflow tasks: ``TrafficShiftOperator``, ``FailoverNotifier`` and ``add_traffic_moves``.

``add_traffic_moves`` wires the same branch into the failover_moves DAG and the manual failover DAG: after the task
that lists the moves (``{"actions": [{"region", "action", "strategy", ...}]}``), a branch picks the strategy
tasks those moves need (automatic, graceful, immediate, failback) or ``no_move``. Each strategy task moves
its regions one after another (``advance_moves``), so the check that the last healthy region is never drained
sees every earlier move; the graceful drain and the failback defer to a ``TimeDeltaTrigger`` between steps
instead of sleeping on a worker, carrying their progress in the deferral's kwargs. Every strategy task runs in
the one-slot ``mlp_dns_moves`` pool, shared by both DAGs.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseOperator
from airflow.sdk.bases.notifier import BaseNotifier

from include.airflow.defaults import DNS_MOVES_POOL
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


class TrafficShiftOperator(BaseOperator):
    """Make the moves of one kind and strategy listed by ``actions_task_id``, deferring between steps."""

    def __init__(self, *, kind: str, strategy: str, actions_task_id: str, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.strategy = strategy
        self.actions_task_id = actions_task_id

    def execute(self, context) -> dict:
        from include.failover.strategies import MoveProgress

        listed = context["ti"].xcom_pull(task_ids=self.actions_task_id)["actions"]
        queue = [a for a in listed if a["action"] == self.kind and a["strategy"] == self.strategy]
        self.log.info("Moves to make: %s", queue)
        return self._advance(context, MoveProgress(queue))

    def resume(self, context, progress: dict, event=None) -> dict:
        """Go on after a pause, from the progress the deferral carried."""
        from include.failover.strategies import MoveProgress

        return self._advance(context, MoveProgress.from_dict(progress))

    def _advance(self, context, progress) -> dict:
        from include.failover.strategies import advance_moves

        controller = self._controller()
        progress = advance_moves(controller, progress, context["run_id"])
        if progress.done:
            return progress.summary()
        pause = controller.catalogue.failover.step_pause_seconds
        self.log.info("Next step of %s in %ss", progress.plan.region, pause)
        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=pause)),
            method_name="resume",
            kwargs={"progress": progress.as_dict()},
        )

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
            pool=DNS_MOVES_POOL,
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
