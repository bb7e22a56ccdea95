"""Health sensing without a worker slot: ``RegionHealthSensor`` defers to ``RegionHealthTrigger``.

The sensor (on a worker, for a moment) reads every region's persisted failover record and defers. The
trigger (in the triggerer) probes all regions from every vantage point each ``health.probe_interval_seconds``,
folds each round's quorum verdicts into the records with the state machine, and fires as soon as any region
changes state, or after ``health.watch_seconds`` with the updated counters. The sensor returns that event; the
health DAG persists it and branches on the actions it asks for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent


class RegionHealthTrigger(BaseTrigger):
    """Probe every region on a short interval until one changes state or the watch ends."""

    def __init__(self, records: list[dict], catalogue_path: str, watch_seconds: float):
        super().__init__()
        self.records = records
        self.catalogue_path = catalogue_path
        self.watch_seconds = watch_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "include.airflow.health.RegionHealthTrigger",
            {"records": self.records, "catalogue_path": self.catalogue_path, "watch_seconds": self.watch_seconds},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import httpx

        from include.catalogue import load_catalogue
        from include.failover.machine import RegionRecord, observe
        from include.health.probes import probe_round

        catalogue = await asyncio.to_thread(load_catalogue, self.catalogue_path)
        records = {data["region"]: RegionRecord.from_dict(data) for data in self.records}
        started = time.time()
        rounds, transitions = 0, []
        async with httpx.AsyncClient() as client:
            while True:
                round_started = time.monotonic()
                verdicts = await probe_round(catalogue, client)
                now, rounds = time.time(), rounds + 1
                for name, verdict in verdicts.items():
                    if verdict.verdict != "ok" or verdict.reasons:
                        self.log.info("round %d: %s %s: %s", rounds, name, verdict.verdict, "; ".join(verdict.reasons))
                    updated, transition = observe(
                        records[name], verdict.verdict, verdict.reasons, verdict.evidence(), now, catalogue
                    )
                    records[name] = updated
                    if transition is not None:
                        self.log.warning("transition after %d rounds: %s", rounds, transition.describe())
                        transitions.append(transition.as_dict())
                if transitions or now - started >= self.watch_seconds:
                    yield TriggerEvent(
                        {
                            "records": [r.as_dict() for r in records.values()],
                            "transitions": transitions,
                            "rounds": rounds,
                            "watched_seconds": round(now - started, 3),
                        }
                    )
                    return
                elapsed = time.monotonic() - round_started
                await asyncio.sleep(max(0.0, catalogue.health.probe_interval_seconds - elapsed))


class RegionHealthSensor(BaseSensorOperator):
    """Wait, in the triggerer, until a region changes state (or the watch ends); return the trigger's event."""

    def execute(self, context) -> None:
        from include.catalogue import catalogue_path, load_catalogue
        from include.failover.store import FailoverStore, format_states

        catalogue = load_catalogue()
        store = FailoverStore.from_connection(catalogue.replication.state_connection)
        records = store.load([r.name for r in catalogue.regions])
        self.log.info("Failover state before this watch:\n%s", format_states(records))
        watch = catalogue.health.watch_seconds
        self.defer(
            trigger=RegionHealthTrigger(
                records=[r.as_dict() for r in records.values()],
                catalogue_path=str(catalogue_path().resolve()),
                watch_seconds=watch,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=watch + 120),
        )

    def execute_complete(self, context, event: dict) -> dict:
        self.log.info(
            "Watched %.1fs, %d probe rounds, %d transitions",
            event["watched_seconds"],
            event["rounds"],
            len(event["transitions"]),
        )
        return event
