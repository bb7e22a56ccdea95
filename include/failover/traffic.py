"""Moving traffic between regions safely: the checks before a move, warm-up, the weight steps, and the records.

Rules every move obeys, whatever the strategy:

- **Never drain the last healthy region.** Traffic only moves to receivers that are HEALTHY (or, if none is,
  DEGRADED) and not being drained themselves; if there are none, nothing changes and the refusal is raised as
  ``MoveRefused`` for the alert. No change may leave every weight at 0 either (``Route53Traffic.apply``
  refuses one that leaves no serving region with weight above 0: Route 53 would then answer with weight-0
  records).
- **The circuit breaker.** At most ``failover.max_failovers_per_hour`` failovers (automatic or manual) per
  hour over all regions; the next is refused until the hour has passed, unless an operator overrides it. The
  breaker counts its own ledger (``mlp_failover_starts``), one row per region and episode, so the health
  watch's switch and the DAG's move of the same UNHEALTHY episode count once.
- **Warm-up first.** Receivers with a cluster connection are scaled to ``failover.warmup_replicas`` and
  every receiver must answer ``/ready`` before a weight moves (after it, for the health watch's switch).
- **One change at a time.** Every change to the traffic records holds the state database's lease lock named
  after ``dns.record`` (``dns_lock``) across its read-modify-write: it reads Route 53 and the region records
  afresh and sends only the records it changes, so a concurrent move's weight is never written back from a
  stale read. The breaker's count and its ledger entry happen under the same lock, and so does the record of
  a move's end. The Airflow tasks that move traffic (failover_moves' and manual_failover's) also share the
  one-slot ``mlp_dns_moves`` pool. A deferred step holds no slot (Airflow's pools leave deferred tasks out by
  default), so a long graceful drain never holds up another region's automatic failover between its steps;
  the lock is what serialises each read-modify-write, the pool only keeps the tasks from queueing on it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Collection, Generator
from contextlib import contextmanager, nullcontext

from include.catalogue import Catalogue
from include.clouds.route53 import BASELINE_WEIGHT
from include.errors import ConcurrentStateChange, MoveRefused
from include.failover.machine import RegionRecord, State, Transition, moved
from include.failover.store import FailoverStart, FailoverStore
from include.health.probes import probe_now

log = logging.getLogger(__name__)

HOUR = 3600.0
HEALTH_WATCH = "health-watch"  # who the health watch's switches are by
RECEIVING_STATES = (State.HEALTHY, State.DEGRADED)
RECORD_ATTEMPTS = 5


def this_process() -> str:
    """Who holds a lock when the caller names nobody: host, process and thread."""
    return f"{socket.gethostname()} pid {os.getpid()} {threading.current_thread().name}"


class TrafficController:
    """Plans and makes traffic moves for one catalogue, recording each in the failover store."""

    def __init__(self, catalogue: Catalogue, store: FailoverStore, dns=None):
        self.catalogue = catalogue
        self.store = store
        self.dns = dns or Route53Traffic(catalogue)
        self._held = threading.local()  # how deep this thread holds the traffic lock

    def records(self) -> dict[str, RegionRecord]:
        return self.store.load([r.name for r in self.catalogue.regions])

    def receivers_for(self, region: str, records: dict[str, RegionRecord], draining: Collection[str] = ()) -> list[str]:
        """Regions that can take ``region``'s traffic: HEALTHY ones, or DEGRADED ones if none is HEALTHY, and
        in either case none of ``draining`` (regions with a failover under way)."""
        others = [r.name for r in self.catalogue.regions if r.name != region and r.name not in draining]
        healthy = [name for name in others if records[name].state == State.HEALTHY]
        return healthy or [name for name in others if records[name].state == State.DEGRADED]

    @contextmanager
    def dns_lock(self, holder: str | None = None) -> Generator[None]:
        """Hold the traffic lock: the state database's lease lock named after ``dns.record``.

        Reentrant within one thread of this controller: a hold inside a hold (a move's step calling
        ``set_weight``) does not take the lock again. ``TrafficLockTimeout`` if another holder keeps it.
        """
        depth = getattr(self._held, "depth", 0)
        outer = self.store.lock(self.catalogue.dns.record, holder or this_process()) if depth == 0 else nullcontext()
        with outer:
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth

    def check_failover(
        self, region: str, *, override_breaker: bool = False, started_by: str, strategy: str
    ) -> list[str]:
        """The receivers for draining ``region``, or ``MoveRefused`` naming the rule that forbids it.

        Under the traffic lock, from fresh records, the failover is entered in the breaker's ledger for the
        region's current episode (by ``started_by``, a run id or ``health-watch``, with ``strategy``); a
        failover of an episode already entered is neither refused nor counted again.
        """
        receivers, _ = self._start_failover(region, override_breaker, started_by, strategy)
        return receivers

    def _start_failover(
        self, region: str, override_breaker: bool, started_by: str, strategy: str
    ) -> tuple[list[str], FailoverStart]:
        self.catalogue.region(region)
        with self.dns_lock(started_by):
            now = time.time()
            records = self.records()
            record = records[region]
            if record.state == State.FAILOVER:
                raise MoveRefused(f"not failing over {region}: it is failed over already ({record.reason})")
            draining = self._draining(records, self.dns.read().weights) - {region}
            receivers = self.receivers_for(region, records, draining)
            if not receivers:
                busy = f" ({', '.join(sorted(draining))} being drained)" if draining else ""
                raise MoveRefused(
                    f"not failing over {region}: no other region is healthy{busy}, so draining it would leave "
                    "traffic pointed at nothing; DNS left as it is"
                )
            limit = self.catalogue.failover.max_failovers_per_hour
            start = FailoverStart(region, record.since, now, started_by, strategy, override_breaker)
            entered, others = self.store.start_failover(start, limit=limit, window_seconds=HOUR)
            if entered is None:
                closes = others[len(others) - limit].started_at + HOUR - now  # then fewer than limit are left
                raise MoveRefused(
                    f"not failing over {region}: circuit breaker open, {len(others)} failovers in the last hour "
                    f"(limit {limit}: {', '.join(s.region for s in others)}); it closes in {closes:.0f}s"
                )
            return receivers, entered

    def switch_now(self, region: str, reason: str, *, started_by: str = HEALTH_WATCH) -> dict:
        """The health watch's fast path the moment ``region`` turns UNHEALTHY: in one hold of the traffic lock,
        the failover checks (and the breaker's entry), then all its weight to the receivers in one change.

        Returns the switch (``region``, ``receivers``, ``change_id``, ``before``: the weights before, ``at``);
        ``MoveRefused``, changing nothing, when a rule forbids it. The region's state is left as it is: the
        DAG's move of the same episode checks the receivers, finds nothing to change and records FAILOVER.
        """
        strategy = self.catalogue.strategy_of(self.catalogue.region(region))
        with self.dns_lock(started_by):
            before = self.dns.read().weights
            receivers, start = self._start_failover(region, False, started_by, strategy)
            change_id = self.set_weight(region, 0, receivers, serving=False, holder=started_by)
            if change_id is not None:
                self.store.note_change(region, start.episode, change_id)
        log.warning("switched DNS away from %s (%s) to %s: change %s", region, reason, ", ".join(receivers), change_id)
        return {"region": region, "receivers": receivers, "change_id": change_id, "before": before, "at": time.time()}

    def _draining(self, records: dict[str, RegionRecord], weights: dict[str, int]) -> set[str]:
        """Regions being drained: a failover of their current episode started and their weight is below 100
        (a failover refused before its first step leaves the region as it was, a receiver like any other)."""
        under_way = self.store.failovers_under_way(records.values())
        return {name for name in under_way if weights.get(name, 0) < BASELINE_WEIGHT}

    def failover_under_way(self, region: str) -> FailoverStart | None:
        """The ledger's failover of ``region``'s current episode, if one was started (and not recorded yet)."""
        return self.store.failovers_under_way([self.records()[region]]).get(region)

    def recent_failovers(self, now: float | None = None) -> list[FailoverStart]:
        """The failovers the circuit breaker counts now: those started in the last hour, oldest first."""
        return self.store.failovers_started(since=(now or time.time()) - HOUR)

    def warm_up(self, receivers: list[str]) -> dict:
        """Scale each receiver's serving deployment (where it has a cluster) and check that it is ready."""
        from include.clouds.kubernetes import scale_for_warmup

        failover = self.catalogue.failover
        evidence: dict[str, dict] = {}
        for name in receivers:
            region = self.catalogue.region(name)
            if region.connections.kubernetes:
                evidence[name] = scale_for_warmup(
                    region.connections.kubernetes,
                    failover.kubernetes_namespace,
                    failover.serving_deployment,
                    failover.warmup_replicas,
                    timeout=120,
                )
            else:
                evidence[name] = {"scaled": False, "why": "no cluster connection in the catalogue"}
        verdicts = probe_now(self.catalogue, set(receivers))
        not_ready = {name: v.reasons for name, v in verdicts.items() if v.verdict == "failed"}
        if not_ready:
            raise MoveRefused(f"receivers failed their readiness check before the move: {not_ready}")
        return {name: {**evidence[name], "verdict": verdicts[name].verdict} for name in receivers}

    def set_weight(
        self, region: str, weight: int, receivers: list[str], *, serving: bool, holder: str | None = None
    ) -> str | None:
        """One Route 53 change: ``region``'s weighted record to ``weight``, and each receiver at 0 back to 100.

        Under the traffic lock, from a fresh read, and only the records this move changes are sent, so a
        weight another move set is never written back. A receiver is raised only while it can receive
        (HEALTHY or DEGRADED, and no failover of it under way). ``serving`` says whether ``region`` keeps (or
        gets back) its latency and failover records; every other region with a weight above 0 after the change
        has them. Returns the Route 53 change id, or None when nothing changed; ``MoveRefused``, changing
        nothing, if no region would be left with a weight above 0.
        """
        with self.dns_lock(holder):
            current = self.dns.read().weights
            records = self.records()
            draining = self._draining(records, current)
            changed = {} if current.get(region) == weight else {region: weight}
            for name in receivers:
                can_receive = records[name].state in RECEIVING_STATES and name not in draining
                if name != region and current.get(name, 0) == 0 and can_receive:
                    changed[name] = BASELINE_WEIGHT
            after = current | changed
            serving_regions = {name for name, w in after.items() if w > 0 and name != region}
            if serving:
                serving_regions.add(region)
            if not any(after.get(name, 0) > 0 for name in serving_regions):
                raise MoveRefused(
                    f"not setting {region}'s weight to {weight}: no region would be left serving with a weight "
                    f"above 0 (weights then {after}); DNS left as it is"
                )
            return self.dns.apply(changed, serving_regions)

    def record(
        self,
        region: str,
        target: State,
        reason: str,
        evidence: dict,
        run_id: str | None = None,
        *,
        held: bool = False,
    ) -> Transition:
        """Persist ``region``'s move to ``target`` (compare-and-swap on its current version, read again if the
        health watch wrote the record in between)."""
        for _ in range(RECORD_ATTEMPTS):
            updated, transition = moved(self.records()[region], target, reason, evidence, time.time(), held=held)
            try:
                self.store.save([updated], [transition], run_id)
                return transition
            except ConcurrentStateChange:
                log.info("%s: its record changed while %s was written; reading it again", region, target)
        raise ConcurrentStateChange(
            f"{region}: its record changed under each of {RECORD_ATTEMPTS} writes of {target}; nothing was written"
        )

    def check_receivers(self, receivers: list[str]) -> dict[str, str]:
        """Probe the receivers now; the verdict of each (between graceful steps)."""
        return {name: v.verdict for name, v in probe_now(self.catalogue, set(receivers)).items()}
