"""Moving traffic between regions safely: the checks before a move, warm-up, the weight steps, and the records.

Rules every move obeys, whatever the strategy:

- **Never drain the last healthy region.** Traffic only moves to receivers that are HEALTHY (or, if none is,
  DEGRADED); if there are none, nothing changes and the refusal is raised as ``MoveRefused`` for the alert.
  Route 53 refuses nothing either way: ``Route53Traffic.apply`` rejects a change that leaves no serving
  region with weight above 0 (Route 53 would then answer with weight-0 records).
- **The circuit breaker.** At most ``failover.max_failovers_per_hour`` failovers (automatic or manual) per
  hour over all regions; the next is refused until the hour has passed, unless an operator overrides it.
- **Warm-up first.** Receivers with a cluster connection are scaled to ``failover.warmup_replicas`` and
  every receiver must answer ``/ready`` before a weight moves.
"""

from __future__ import annotations

import time

from include.catalogue import Catalogue
from include.errors import MoveRefused
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

    def records(self) -> dict[str, RegionRecord]:
        return self.store.load([r.name for r in self.catalogue.regions])

    def receivers_for(self, region: str, records: dict[str, RegionRecord]) -> list[str]:
        """Regions that can take ``region``'s traffic: HEALTHY ones, or DEGRADED ones if none is HEALTHY."""
        others = [r.name for r in self.catalogue.regions if r.name != region]
        healthy = [name for name in others if records[name].state == State.HEALTHY]
        return healthy or [name for name in others if records[name].state == State.DEGRADED]

    def check_failover(self, region: str, *, override_breaker: bool = False) -> list[str]:
        """The receivers for draining ``region``, or ``MoveRefused`` naming the rule that forbids it."""
        self.catalogue.region(region)
        now = time.time()
        receivers = self.receivers_for(region, self.records())
        if not receivers:
            raise MoveRefused(
                f"not failing over {region}: no other region is healthy, so draining it would leave traffic "
                "pointed at nothing; DNS left as it is"
            )
        recent = [t for t in self.store.transitions(since=now - HOUR) if t.to_state == State.FAILOVER]
        limit = self.catalogue.failover.max_failovers_per_hour
        if len(recent) >= limit and not override_breaker:
            oldest = min(t.at for t in recent)
            raise MoveRefused(
                f"not failing over {region}: circuit breaker open, {len(recent)} failovers in the last hour "
                f"(limit {limit}: {', '.join(t.region for t in recent)}); it closes in {oldest + HOUR - now:.0f}s"
            )
        return receivers

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

    def set_weight(self, region: str, weight: int, receivers: list[str], *, serving: bool) -> str | None:
        """One Route 53 change: ``region``'s weighted record to ``weight`` and every receiver at least serving.

        ``serving`` says whether ``region`` keeps (or gets back) its latency and failover records. Returns the
        Route 53 change id, or None when nothing changed.
        """
        current = self.dns.read()
        weights = dict(current.weights)
        for name in receivers:
            if weights.get(name, 0) == 0:
                weights[name] = 100
        weights[region] = weight
        serving_regions = {name for name, w in weights.items() if w > 0 and name != region}
        if serving:
            serving_regions.add(region)
        return self.dns.apply(weights, serving_regions)

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
        """Persist ``region``'s move to ``target`` (compare-and-swap on its current version)."""
        record = self.records()[region]
        updated, transition = moved(record, target, reason, evidence, time.time(), held=held)
        self.store.save([updated], [transition], run_id)
        return transition

    def check_receivers(self, receivers: list[str]) -> dict[str, str]:
        """Probe the receivers now; the verdict of each (between graceful steps)."""
        return {name: v.verdict for name, v in probe_now(self.catalogue, set(receivers)).items()}
