"""The three failover strategies and the gradual failback, as step plans a task (or test) walks through.

- ``automatic``: warm up the receivers, then move all of the region's weight in one Route 53 change; the
  health DAG then waits for propagation (the change INSYNC, then the TTL).
- ``graceful``: warm up, then drain the region's weight step by step (``failover.drain_steps``, 100 -> 75 ->
  50 -> 25 -> 0) with ``failover.step_pause_seconds`` between steps. Before each step the receivers are
  probed: a degraded receiver pauses the drain (at most ``MAX_PAUSES`` pauses in a row, then it goes on,
  since the region is unhealthy), a failed one stops receiving; with no receiver left the drain stops.
- ``immediate``: an emergency switch: one change, no warm-up, no waiting.
- failback (always gradual): the recovered region's weight rises by ``failover.failback_steps`` (0 -> 25 ->
  50 -> 75 -> 100); before each step the region itself is probed, and if it is not ``ok`` the failback is
  abandoned and its weight goes back to 0 (the region returns to FAILOVER, held out until stable again).

A plan is plain data (JSON-ready), so a deferring operator can carry it between steps. ``advance_moves`` walks
a task's list of moves up to each pause; the traffic-shift operator and the chaos tests' health loop both
drive it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from include.errors import MoveRefused
from include.failover.machine import State
from include.failover.notify import refusal_alert, transition_alert
from include.failover.traffic import TrafficController

log = logging.getLogger(__name__)
STRATEGIES = ("automatic", "graceful", "immediate")
MAX_PAUSES = 5


@dataclass(frozen=True)
class ShiftPlan:
    """Where a traffic move stands: the weights still to apply and what happened so far."""

    region: str
    kind: str  # "failover" or "failback"
    strategy: str
    weights: list[int]
    receivers: list[str]
    reason: str
    held: bool = False
    step: int = 0
    pauses: int = 0
    changes: list[str] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.step >= len(self.weights)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ShiftPlan:
        return cls(**data)


def plan_failover(
    controller: TrafficController,
    region: str,
    strategy: str,
    reason: str,
    *,
    override_breaker: bool = False,
    held: bool = False,
    started_by: str = "traffic-move",
    approval: dict | None = None,
) -> ShiftPlan:
    """Check the safety rules and warm up the receivers (not for ``immediate``); the plan to drain ``region``.

    When the health watch already switched DNS away in this episode, its change is the plan's first and the
    warm-up checks the receivers that took the traffic. Raises ``MoveRefused`` when a rule forbids the move.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown failover strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    receivers = controller.check_failover(
        region, override_breaker=override_breaker, started_by=started_by, strategy=strategy
    )
    started = controller.store.failover_start(region, controller.records()[region].since)
    before = controller.dns.read()
    evidence: dict = {"before": before.as_dict()}
    changes = []
    if started and started["started_by"] != started_by and started["change_id"]:
        evidence["switched_by_watch"] = {"change_id": started["change_id"], "at": started["started_at"]}
        changes.append(started["change_id"])
    if approval is not None:
        evidence["approval"] = approval
    if strategy != "immediate":
        evidence["warm_up"] = controller.warm_up(receivers)
    steps = controller.catalogue.failover.drain_steps if strategy == "graceful" else [0]
    weights = [w for w in steps if w < before.weights.get(region, 100)] or [0]  # resume an interrupted drain
    return ShiftPlan(
        region, "failover", strategy, weights, receivers, reason, held=held, changes=changes, evidence=evidence
    )


def plan_failback(controller: TrafficController, region: str, reason: str, approval: dict | None = None) -> ShiftPlan:
    """The plan to bring ``region`` back gradually; ``MoveRefused`` unless it is failed over and probes ``ok``.
    An operator's ``approval`` goes into the plan's evidence, and so into the record of the failback."""
    record = controller.records()[region]
    if record.state not in (State.FAILOVER, State.RECOVERING):
        raise MoveRefused(f"not failing back {region}: it is {record.state}, not failed over")
    verdict = controller.check_receivers([region])[region]
    if verdict != "ok":
        raise MoveRefused(f"not failing back {region}: its probes say {verdict} now")
    before = controller.dns.read()
    receivers = sorted(before.receiving() - {region})
    evidence = {"before": before.as_dict()} | ({"approval": approval} if approval is not None else {})
    steps = [w for w in controller.catalogue.failover.failback_steps if w > before.weights.get(region, 0)] or [100]
    return ShiftPlan(region, "failback", "graceful", steps, receivers, reason, evidence=evidence)


def plan_move(controller: TrafficController, action: dict, run_id: str | None = None) -> ShiftPlan:
    """The plan for one listed move (``region``, ``action``, ``strategy``, ``reason`` and, for an operator's
    failover, ``held`` and ``override_circuit_breaker``; for an operator's move, its ``approval``);
    ``MoveRefused`` when a rule forbids it."""
    if action["action"] == "failback":
        return plan_failback(controller, action["region"], action["reason"], action.get("approval"))
    return plan_failover(
        controller,
        action["region"],
        action["strategy"],
        action["reason"],
        override_breaker=action.get("override_circuit_breaker", False),
        held=action.get("held", False),
        started_by=run_id or "traffic-move",
        approval=action.get("approval"),
    )


def take_step(controller: TrafficController, plan: ShiftPlan) -> tuple[ShiftPlan, str]:
    """Apply the plan's next weight, unless a check says to wait. Returns the new plan and what happened:
    ``stepped``, ``paused`` (try the same step after the pause) or ``abandoned`` (failback gave up)."""
    weight = plan.weights[plan.step]
    receivers = plan.receivers
    if plan.step > 0 and plan.kind == "failover":
        verdicts = controller.check_receivers(receivers)
        receivers = [name for name in receivers if verdicts[name] != "failed"]
        if not receivers:
            raise MoveRefused(f"stopped draining {plan.region} at step {plan.step}: every receiver failed {verdicts}")
        degraded = [name for name in receivers if verdicts[name] == "degraded"]
        if degraded and plan.pauses < MAX_PAUSES:
            log.warning("pausing the drain of %s: receivers degraded: %s", plan.region, ", ".join(degraded))
            return replace(plan, receivers=receivers, pauses=plan.pauses + 1), "paused"
    if plan.kind == "failback" and plan.step > 0:
        verdict = controller.check_receivers([plan.region])[plan.region]
        if verdict != "ok":
            change = controller.set_weight(plan.region, 0, receivers, serving=False)
            log.warning("abandoning the failback of %s at step %d: it probes %s", plan.region, plan.step, verdict)
            changes = plan.changes + ([change] if change else [])
            return replace(plan, changes=changes, evidence={**plan.evidence, "abandoned_at": weight}), "abandoned"
    serving = weight > 0 if plan.kind == "failover" else weight == 100
    change = controller.set_weight(plan.region, weight, receivers, serving=serving)
    log.info("%s of %s: weight %d (%s)", plan.kind, plan.region, weight, change or "no change needed")
    changes = plan.changes + ([change] if change else [])
    return replace(plan, receivers=receivers, step=plan.step + 1, pauses=0, changes=changes), "stepped"


def finish(controller: TrafficController, plan: ShiftPlan, outcome: str, run_id: str | None = None):
    """Record the move's end state: FAILOVER after a drain or an abandoned failback, HEALTHY after a failback."""
    evidence = {**plan.evidence, "after": controller.dns.read().as_dict(), "changes": plan.changes}
    if plan.kind == "failover":
        reason = f"{plan.strategy} failover to {', '.join(plan.receivers)} ({plan.reason})"
        return controller.record(plan.region, State.FAILOVER, reason, evidence, run_id, held=plan.held)
    if outcome == "abandoned":
        return controller.record(plan.region, State.FAILOVER, f"failback abandoned: {plan.reason}", evidence, run_id)
    return controller.record(plan.region, State.HEALTHY, f"failback complete: {plan.reason}", evidence, run_id)


@dataclass(frozen=True)
class MoveProgress:
    """Where a task's list of moves stands: the moves not started yet, the one under way and the results so far.

    Plain data (JSON-ready) like ``ShiftPlan``, so a deferring operator can carry it between steps.
    """

    queue: list[dict]
    plan: ShiftPlan | None = None
    results: list[dict] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.plan is None and not self.queue

    def as_dict(self) -> dict:
        plan = self.plan.as_dict() if self.plan else None
        return {"queue": self.queue, "plan": plan, "results": self.results}

    @classmethod
    def from_dict(cls, data: dict) -> MoveProgress:
        plan = ShiftPlan.from_dict(data["plan"]) if data["plan"] else None
        return cls(list(data["queue"]), plan, list(data["results"]))

    def summary(self) -> dict:
        """The moves made or refused (without their alerts), their alerts, and the last Route 53 change id."""
        changes = [change for result in self.results for change in result.get("changes", [])]
        return {
            "moves": [{k: v for k, v in result.items() if k != "alert"} for result in self.results],
            "alerts": [result["alert"] for result in self.results],
            "last_change_id": changes[-1] if changes else "",
        }


def advance_moves(
    controller: TrafficController,
    progress: MoveProgress,
    run_id: str | None = None,
    on_step: Callable[[ShiftPlan, str], None] | None = None,
) -> MoveProgress:
    """Walk the moves one after another, up to the next pause between two steps of a move, or to the end.

    A move a safety rule refuses is recorded with its alert, and the next one starts. ``on_step(plan,
    outcome)`` is called after each step. Unless the returned progress is ``done``, wait
    ``failover.step_pause_seconds`` and call again with it.
    """
    queue, plan, results = list(progress.queue), progress.plan, list(progress.results)
    while plan is not None or queue:
        if plan is None:
            action = queue.pop(0)
            try:
                plan = plan_move(controller, action, run_id)
            except MoveRefused as exc:
                log.error("%s", exc)
                results.append(_refused(action["region"], exc, run_id))
                continue
        try:
            plan, outcome = take_step(controller, plan)
        except MoveRefused as exc:
            log.error("%s", exc)
            results.append({**_refused(plan.region, exc, run_id), "changes": plan.changes})
            plan = None
            continue
        if on_step is not None:
            on_step(plan, outcome)
        if outcome == "abandoned" or plan.done:
            transition = finish(controller, plan, outcome, run_id)
            log.warning("%s", transition.describe())
            results.append(
                {"region": plan.region, "changes": plan.changes, "alert": transition_alert(transition, run_id)}
            )
            plan = None
            continue
        return MoveProgress(queue, plan, results)
    return MoveProgress(queue, None, results)


def _refused(region: str, exc: MoveRefused, run_id: str | None) -> dict:
    return {"region": region, "refused": str(exc), "alert": refusal_alert(region, str(exc), run_id)}
