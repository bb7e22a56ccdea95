"""The health watch as an Airflow asset watcher: ``RegionHealthWatcher`` runs ``include.failover.health_watch``
in the triggerer for as long as the failover_moves DAG is unpaused.

It never ends a run to hand a transition over, so no region goes unwatched between runs: each report worth a
run (a transition, a DNS switch, a refusal, or a move still due) becomes an event of the ``region-health``
asset, and failover_moves, scheduled on that asset, gets every event queued since its last run. A triggerer
restart starts the watch again from the persisted records.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent


class RegionHealthWatcher(BaseEventTrigger):
    """Probe every region each ``health.probe_interval_seconds``; fire an event for each report worth a run."""

    def __init__(self, catalogue_path: str):
        super().__init__()
        self.catalogue_path = catalogue_path

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "include.airflow.health.RegionHealthWatcher", {"catalogue_path": self.catalogue_path}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from include.catalogue import load_catalogue
        from include.failover.health_watch import watch_reports

        catalogue = await asyncio.to_thread(load_catalogue, self.catalogue_path)
        self.log.info("Watching %d regions every %ss", len(catalogue.regions), catalogue.health.probe_interval_seconds)
        async for report in watch_reports(catalogue):
            self.log.warning(
                "%d transitions, %d switches, %d refusals; moves due: %s",
                len(report.transitions),
                len(report.switches),
                len(report.refusals),
                ", ".join(report.due) or "none",
            )
            yield TriggerEvent(report.as_dict())
