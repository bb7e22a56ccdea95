"""The health watch: probe every region each interval, persist what the probes show, and switch DNS away from a
region the moment it turns UNHEALTHY.

``HealthWatch`` runs for as long as automatic failover is on, inside the triggerer
(``include.airflow.health.RegionHealthWatcher``). Each round:

1. probes every region from every vantage point (``probe_round``);
2. folds each verdict into the region's record (``observe``) and saves the records that changed, with the
   transitions, in one compare-and-swap transaction. If a traffic move wrote a record in between
   (``ConcurrentStateChange``), it reloads the records and folds the same verdicts into them again, so the
   store is always the one truth and a move's write is never undone;
3. for each region that just turned UNHEALTHY and fails over with the ``automatic`` or ``immediate`` strategy,
   makes the first DNS change itself (``TrafficController.switch_now``: the serialised path every move takes,
   with the circuit breaker and the last-healthy-region rule). The failover_moves DAG then warms up and
   checks the receivers, waits for the change to propagate and records FAILOVER. A ``graceful`` drain and
   every failback are the DAG's alone.

A round's ``WatchReport`` is worth an Airflow run when it has transitions, switches or refusals, or, every
``health.rerequest_seconds``, while a state still asks for a move (one refused by the breaker, or cut short).
Nothing here ends the watch: a failed round is logged and the next one starts on time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field

import httpx

from include.catalogue import Catalogue
from include.errors import ConcurrentStateChange, MoveRefused
from include.failover.machine import ACTIONS, RegionRecord, State, Transition, observe
from include.failover.store import FailoverStore
from include.failover.traffic import TrafficController
from include.health.probes import RegionVerdict, probe_round

log = logging.getLogger(__name__)

FAST_STRATEGIES = ("automatic", "immediate")  # the strategies whose first DNS change the watch makes
WATCH = "health-watch"  # who the watch's writes and switches are by


@dataclass(frozen=True)
class WatchReport:
    """What one round found: transitions, DNS switches made, switches refused, regions whose state asks for a
    move. JSON-ready (``as_dict``): it travels as the payload of the watcher's asset event."""

    at: float
    transitions: list[dict] = field(default_factory=list)
    switches: list[dict] = field(default_factory=list)
    refusals: list[dict] = field(default_factory=list)
    due: list[str] = field(default_factory=list)

    @property
    def news(self) -> bool:
        """Whether something happened this round (rather than a pending move to request again)."""
        return bool(self.transitions or self.switches or self.refusals)

    def as_dict(self) -> dict:
        return asdict(self)


class HealthWatch:
    """The watch's state between rounds: every region's record as last persisted, and the controller it moves
    traffic with."""

    def __init__(self, catalogue: Catalogue, store: FailoverStore, controller: TrafficController | None = None):
        self.catalogue = catalogue
        self.store = store
        self.controller = controller or TrafficController(catalogue, store)
        self.names = [region.name for region in catalogue.regions]
        self.records = store.load(self.names)

    @classmethod
    def open(cls, catalogue: Catalogue) -> HealthWatch:
        """The watch on the catalogue's state database (``replication.state_connection``)."""
        return cls(catalogue, FailoverStore.from_connection(catalogue.replication.state_connection))

    async def round(self, client: httpx.AsyncClient) -> WatchReport:
        """Probe every region once, then persist and act on the verdicts (in a thread: SQL and Route 53 calls
        block)."""
        verdicts = await probe_round(self.catalogue, client)
        return await asyncio.to_thread(self.after_probes, verdicts, time.time())

    def after_probes(self, verdicts: dict[str, RegionVerdict], now: float) -> WatchReport:
        """Fold one round's verdicts into the records, persist them, and make the switches they call for."""
        for name, verdict in verdicts.items():
            if verdict.verdict != "ok" or verdict.reasons:
                log.info("%s %s: %s", name, verdict.verdict, "; ".join(verdict.reasons))
        try:
            transitions = self._persist(verdicts, now)
        except ConcurrentStateChange:
            log.info("a traffic move wrote a region's record during this round; folding the round again")
            self.records = self.store.load(self.names)
            transitions = self._persist(verdicts, now)
        switches, refusals = [], []
        for transition in transitions:
            log.warning("%s", transition.describe())
            region = self.catalogue.region(transition.region)
            if transition.to_state == State.UNHEALTHY and self.catalogue.strategy_of(region) in FAST_STRATEGIES:
                try:
                    switches.append(self.controller.switch_now(region.name, transition.reason, started_by=WATCH))
                except MoveRefused as exc:
                    log.error("%s", exc)
                    refusals.append({"region": region.name, "refused": str(exc), "at": time.time()})
                except Exception as exc:  # Route 53 or the lock unreachable: the DAG's move is the fallback
                    log.exception("switching DNS away from %s failed; failover_moves makes the move", region.name)
                    refusals.append({"region": region.name, "refused": f"switch failed: {exc}", "at": time.time()})
        due = [record.region for record in self.records.values() if record.state in ACTIONS]
        return WatchReport(now, [t.as_dict() for t in transitions], switches, refusals, due)

    def _persist(self, verdicts: dict[str, RegionVerdict], now: float) -> list[Transition]:
        """Save the records this round changed and its transitions (compare-and-swap); the transitions."""
        updated: dict[str, RegionRecord] = {}
        transitions: list[Transition] = []
        for name, verdict in verdicts.items():
            record, transition = observe(
                self.records[name], verdict.verdict, verdict.reasons, verdict.evidence(), now, self.catalogue
            )
            if record != self.records[name]:
                updated[name] = record
            if transition is not None:
                transitions.append(transition)
        self.store.save(list(updated.values()), transitions, run_id=WATCH)
        for name, record in updated.items():
            self.records[name] = RegionRecord.from_dict({**record.as_dict(), "version": record.version + 1})
        return transitions


async def watch_reports(catalogue: Catalogue, watch: HealthWatch | None = None):
    """Watch forever: yield each round's report that is worth a run (see the module docstring).

    ``watch`` defaults to ``HealthWatch.open(catalogue)``. A round that fails (the state database or Route 53
    unreachable) is logged and the next starts on time, from the persisted records.
    """
    if watch is None:
        watch = await asyncio.to_thread(HealthWatch.open, catalogue)
    interval, rerequest = catalogue.health.probe_interval_seconds, catalogue.health.rerequest_seconds
    last_request, stale = float("-inf"), False
    async with httpx.AsyncClient() as client:
        while True:
            started = time.monotonic()
            try:
                if stale:
                    watch.records = await asyncio.to_thread(watch.store.load, watch.names)
                    stale = False
                report = await watch.round(client)
            except Exception:
                log.exception("health round failed; the next starts in %ss from the persisted records", interval)
                stale = True
            else:
                if report.news or (report.due and started - last_request >= rerequest):
                    last_request = started if report.due else last_request
                    yield report
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
