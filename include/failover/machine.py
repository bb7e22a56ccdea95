"""The per-region failover state machine: HEALTHY -> DEGRADED -> UNHEALTHY -> FAILOVER -> RECOVERING -> HEALTHY.

``observe`` folds one round's quorum verdict into a region's record and says whether the state changed:

- HEALTHY -> DEGRADED on a failed or degraded round.
- DEGRADED -> UNHEALTHY after ``health.unhealthy_after_failures`` failed rounds in a row that also span at
  least ``health.unhealthy_after_seconds`` (so a short blip never fails a region over); DEGRADED -> HEALTHY
  after ``health.healthy_after_successes`` good rounds in a row (hysteresis).
- UNHEALTHY means "fail over now"; the traffic move itself records UNHEALTHY -> FAILOVER (``moved``). If the
  move was refused (the circuit breaker, or no region left to take the traffic), a region that recovers goes
  back to HEALTHY by the same hysteresis.
- FAILOVER -> RECOVERING once the region has been good for ``failover.stable_seconds`` (a flapping region
  never is), unless an operator's manual failover holds it out. RECOVERING means "fail back now",
  gradually; the failback records RECOVERING -> HEALTHY.
- RECOVERING -> UNHEALTHY if it fails again by the same rule as DEGRADED.

Everything here is pure: no clock, no I/O. ``now`` is seconds since the epoch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum

from include.catalogue import Catalogue


class State(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    UNHEALTHY = "UNHEALTHY"
    FAILOVER = "FAILOVER"
    RECOVERING = "RECOVERING"


# The action a state asks for: the health DAG branches on it.
ACTIONS = {State.UNHEALTHY: "failover", State.RECOVERING: "failback"}


@dataclass(frozen=True)
class RegionRecord:
    """A region's persisted state and the counters the thresholds need. ``version`` guards concurrent writers."""

    region: str
    state: State = State.HEALTHY
    since: float = 0.0
    failures: int = 0
    failing_since: float | None = None
    successes: int = 0
    healthy_since: float | None = None
    reason: str = ""
    held: bool = False  # an operator's manual failover: no automatic failback until a manual one
    version: int = 0

    def as_dict(self) -> dict:
        return {**asdict(self), "state": str(self.state)}

    @classmethod
    def from_dict(cls, data: dict) -> RegionRecord:
        return cls(**{**data, "state": State(data["state"])})


@dataclass(frozen=True)
class Transition:
    """One state change, with why and the evidence that made it."""

    region: str
    from_state: State
    to_state: State
    at: float
    reason: str
    evidence: dict

    def as_dict(self) -> dict:
        return {**asdict(self), "from_state": str(self.from_state), "to_state": str(self.to_state)}

    @classmethod
    def from_dict(cls, data: dict) -> Transition:
        return cls(**{**data, "from_state": State(data["from_state"]), "to_state": State(data["to_state"])})

    def describe(self) -> str:
        return f"{self.region}: {self.from_state} -> {self.to_state}: {self.reason}"


def _count(record: RegionRecord, verdict: str, now: float) -> RegionRecord:
    """Update the consecutive-round counters for one verdict."""
    if verdict == "failed":
        failing_since = now if record.failing_since is None else record.failing_since
        return replace(
            record, failures=record.failures + 1, failing_since=failing_since, successes=0, healthy_since=None
        )
    if verdict == "degraded":
        return replace(record, failures=0, failing_since=None, successes=0, healthy_since=None)
    healthy_since = now if record.healthy_since is None else record.healthy_since
    return replace(record, failures=0, failing_since=None, successes=record.successes + 1, healthy_since=healthy_since)


def observe(
    record: RegionRecord, verdict: str, reasons: list[str], evidence: dict, now: float, catalogue: Catalogue
) -> tuple[RegionRecord, Transition | None]:
    """Fold one round's verdict (``ok``, ``degraded`` or ``failed``) into ``record``; the new record and the
    transition it made, if any."""
    health, failover = catalogue.health, catalogue.failover
    counted = _count(record, verdict, now)
    failing_for = now - counted.failing_since if counted.failing_since is not None else 0.0
    healthy_for = now - counted.healthy_since if counted.healthy_since is not None else 0.0
    failing_long_enough = (
        verdict == "failed"
        and counted.failures >= health.unhealthy_after_failures
        and failing_for >= health.unhealthy_after_seconds
    )
    recovered = verdict == "ok" and counted.successes >= health.healthy_after_successes
    summary = "; ".join(reasons) or verdict
    target, reason = None, ""
    match record.state:
        case State.HEALTHY if verdict != "ok":
            target, reason = State.DEGRADED, f"round {verdict}: {summary}"
        case State.DEGRADED | State.RECOVERING if failing_long_enough:
            target = State.UNHEALTHY
            reason = f"failed {counted.failures} rounds in a row over {failing_for:.1f}s: {summary}"
        case State.DEGRADED | State.UNHEALTHY if recovered:
            target, reason = State.HEALTHY, f"{counted.successes} good rounds in a row"
        case State.FAILOVER if not record.held and recovered and healthy_for >= failover.stable_seconds:
            target = State.RECOVERING
            reason = f"healthy for {healthy_for:.1f}s (stable after {failover.stable_seconds}s)"
    if target is None:
        return counted, None
    transition = Transition(record.region, record.state, target, now, reason, evidence)
    return replace(counted, state=target, since=now, reason=reason), transition


def moved(
    record: RegionRecord, target: State, reason: str, evidence: dict, now: float, *, held: bool = False
) -> tuple[RegionRecord, Transition]:
    """Record a state change made by a traffic move (failover, failback, or an operator's manual move)."""
    transition = Transition(record.region, record.state, target, now, reason, evidence)
    return replace(record, state=target, since=now, reason=reason, held=held), transition
