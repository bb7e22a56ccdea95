"""Moving traffic between regions safely: the checks before a move, warm-up, the weight steps, and the records.

Rules every move obeys, whatever the strategy:

- **Never drain the last healthy region.** Traffic only moves to receivers that are HEALTHY (or, if none is,
  DEGRADED); if there are none, nothing changes and the refusal is raised as ``MoveRefused`` for the alert.
  Route 53 refuses nothing either way: ``Route53Traffic.apply`` rejects a change that leaves no serving
  region with weight above 0 (Route 53 would then answer with weight-0 records).
- **The circuit breaker.** At most ``failover.max_failovers_per_hour`` failovers (automatic or manual) per
  hour over all regions; the next is refused until the hour has passed, unless an operator overrides it.
- **Warm-up first.** Receivers with a cluster connection are scaled to ``failover.warmup_replicas`` and
  every receiver must answer ``/ready`` before a weight moves (after it, for the health watch's switch).
- **One change at a time.** Every change to the traffic records holds the state database's lease lock named
  after ``dns.record`` across its read-modify-write, and sends only the records it changes, so two moves
  (an automatic drain, an operator's failover, a failback, the health watch's switch) never undo each other.
  The breaker's count and its entry in the ledger happen under the same lock. The Airflow tasks that move
  traffic also share the one-slot ``mlp_dns_moves`` pool; a deferred step between two changes holds no slot,
  so a long graceful drain does not hold up another region's failover.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from contextlib import contextmanager

from include.catalogue import Catalogue
from include.errors import ConcurrentStateChange, MoveRefused
from include.failover.machine import RegionRecord, State, Transition, moved
from include.failover.store import FailoverStore
from include.health.probes import probe_now

HOUR = 3600.0


class TrafficController:
    """Plans and makes traffic moves for one catalogue, recording each in the failover store."""

    def __init__(self, catalogue: Catalogue, store: FailoverStore, dns=None):
        from include.clouds.route53 import Route53Traffic

        self.catalogue = catalogue
        self.store = store
        self.dns = dns or Route53Traffic(catalogue)
        self._held = threading.local()  # the traffic lock's hold depth in this thread

    def records(self) -> dict[str, RegionRecord]:
        return self.store.load([r.name for r in self.catalogue.regions])

    def receivers_for(self, region: str, records: dict[str, RegionRecord]) -> list[str]:
        """Regions that can take ``region``'s traffic: HEALTHY ones, or DEGRADED ones if none is HEALTHY."""
        others = [r.name for r in self.catalogue.regions if r.name != region]
        healthy = [name for name in others if records[name].state == State.HEALTHY]
        return healthy or [name for name in others if records[name].state == State.DEGRADED]

    @contextmanager
    def dns_lock(self, holder: str) -> Generator[None]:
        """Hold the traffic lock (reentrant within this controller and thread)."""
        if getattr(self._held, "depth", 0):
            self._held.depth += 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        with self.store.lock(f"dns:{self.catalogue.dns.record}", holder):
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0

    def check_failover(
        self, region: str, *, started_by: str, strategy: str, override_breaker: bool = False
    ) -> list[str]:
        """The receivers for draining ``region``, or ``MoveRefused`` naming the rule that forbids it.

        Under the traffic lock, the failover is entered in the breaker's ledger for the region's current
        state episode; the same episode (the health watch's switch, then the DAG's move) counts once.
        """
        self.catalogue.region(region)
        with self.dns_lock(started_by):
            records = self.records()
            receivers = self.receivers_for(region, records)
            if not receivers:
                raise MoveRefused(
                    f"not failing over {region}: no other region is healthy, so draining it would leave traffic "
                    "pointed at nothing; DNS left as it is"
                )
            limit = self.catalogue.failover.max_failovers_per_hour
            recent = self.store.start_failover(
                region, records[region].since, started_by, strategy, limit, override=override_breaker
            )
            if len(recent) >= limit and not override_breaker:
                closes = min(r["started_at"] for r in recent) + HOUR - time.time()
                raise MoveRefused(
                    f"not failing over {region}: circuit breaker open, {len(recent)} failovers in the last hour "
                    f"(limit {limit}: {', '.join(r['region'] for r in recent)}); it closes in {closes:.0f}s"
                )
            return receivers

    def switch_now(self, region: str, reason: str, *, started_by: str) -> dict:
        """The health watch's switch: drain ``region`` in one change the moment it turns UNHEALTHY, under the
        same rules and lock as every move; ``MoveRefused`` (nothing changed) when a rule forbids it.

        The region's state is left UNHEALTHY: failover_moves checks the receivers and records FAILOVER.
        """
        strategy = self.catalogue.strategy_of(self.catalogue.region(region))
        with self.dns_lock(started_by):
            receivers = self.check_failover(region, started_by=started_by, strategy=strategy)
            before = self.dns.read().weights
            change_id = self.set_weight(region, 0, receivers, serving=False, holder=started_by)
            self.store.note_switch(region, self.records()[region].since, change_id)
        return {"region": region, "receivers": receivers, "change_id": change_id, "before": before, "at": time.time(),
                "reason": reason}  # fmt: skip

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
        self, region: str, weight: int, receivers: list[str], *, serving: bool, holder: str = "traffic-move"
    ) -> str | None:
        """One Route 53 change: ``region``'s weighted record to ``weight`` and every receiver at least serving.

        Read and written under the traffic lock, and only the records this move changes are sent: another
        region's weight set by a concurrent move is never written back from a stale read, and a receiver
        drained since the plan was made is not raised again. ``serving`` says
        whether ``region`` keeps (or gets back) its latency and failover records. Returns the Route 53 change
        id, or None when nothing changed.
        """
        with self.dns_lock(holder):
            current = self.dns.read().weights
            records = self.records()
            changed = {
                name: 100
                for name in receivers
                if current.get(name, 0) == 0
                and name != region
                and records[name].state in (State.HEALTHY, State.DEGRADED)  # not one drained since the plan
            }
            changed[region] = weight
            after = current | changed
            serving_regions = {name for name, w in after.items() if w > 0 and name != region}
            if serving:
                serving_regions.add(region)
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
        for _ in range(5):
            record = self.records()[region]
            updated, transition = moved(record, target, reason, evidence, time.time(), held=held)
            try:
                self.store.save([updated], [transition], run_id)
                return transition
            except ConcurrentStateChange:
                time.sleep(0.05)
        raise ConcurrentStateChange(f"{region}: its record changed under every one of 5 writes of {target}")

    def check_receivers(self, receivers: list[str]) -> dict[str, str]:
        """Probe the receivers now; the verdict of each (between graceful steps)."""
        return {name: v.verdict for name, v in probe_now(self.catalogue, set(receivers)).items()}
