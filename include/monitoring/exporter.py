"""The platform exporter: the platform's records as Prometheus metrics, read afresh on every scrape.

Three sources, each read with bounded queries and each reported by ``mlp_exporter_source_up{source}`` (1: read;
0: the read failed, so that source's metrics are left out of this scrape while the others are still served):

- ``state``: the state database behind the catalogue's ``replication.state_connection`` (replication status,
  failover records and transitions, the circuit breaker's ledger), reached as the stores reach it;
- ``dns``: the weights of the Route 53 weighted record ``dns.record`` (``include.clouds.route53``);
- ``cost``: the newest daily cost report of this month or the last, in the cost store (only when the
  catalogue has a ``cost:`` section).

Replication rows exported: every row not ``verified`` (at most ``REPLICA_ROWS``, newest first) and the
verified ones updated within ``REPLICA_WINDOW``. docs/monitoring.md lists every metric with its labels.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from include.catalogue import Catalogue
from include.failover.machine import State
from include.failover.traffic import HOUR
from include.replication.status import as_utc
from include.state.migrate import require_current_schema
from include.state.schema import failover_starts, failover_transitions, region_state, replication_status

if TYPE_CHECKING:
    from include.clouds.objectstore import ObjectStore
    from include.clouds.route53 import Route53Traffic

log = logging.getLogger(__name__)

REPLICA_WINDOW = timedelta(days=7)  # verified replicas updated within this long are exported
REPLICA_ROWS = 5000  # at most this many replication rows per scrape, newest first
MISSING = "missing"  # the replica state of a region with no row for a model's newest version
ALL_REGIONS = "all"  # the region label of a provider-wide budget

Families = list[GaugeMetricFamily | CounterMetricFamily]


def gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels or [])


def state_families(catalogue: Catalogue, engine: sa.Engine, now: float) -> Families:
    """Replication and failover metrics from the state database (refused unless its schema is current)."""
    require_current_schema(engine)
    with engine.connect() as conn:
        replicas = replica_families(catalogue, conn, now)
        failover = failover_families(catalogue, conn, now)
    return replicas + failover


def replica_families(catalogue: Catalogue, conn: sa.Connection, now: float) -> Families:
    """Lag, age of unfinished requests, replica states, and the count of every row by state."""
    status = replication_status.c
    cutoff = datetime.fromtimestamp(now, UTC) - REPLICA_WINDOW
    rows = conn.execute(
        sa.select(
            status.model,
            status.version,
            status.region,
            status.source_region,
            status.state,
            status.event_time,
            status.updated_at,
            status.verified_at,
        )
        .where(sa.or_(status.state != "verified", status.updated_at >= cutoff))
        .order_by(status.updated_at.desc())
        .limit(REPLICA_ROWS)
    ).all()
    keys = ["model", "version", "region"]
    rpo = gauge("mlp_replication_rpo_seconds", "The catalogue's recovery point objective (replication.rpo_minutes)")
    rpo.add_metric([], catalogue.replication.rpo_minutes * 60)
    lag = gauge("mlp_replication_lag_seconds", "From the registry event to the replica's verification", keys)
    age = gauge("mlp_replication_unverified_age_seconds", "Since the registry event, for a replica not verified", keys)
    state = gauge("mlp_replica_state", "1 for the replica's recorded state (or missing)", [*keys, "state"])
    for row in rows:
        labels = [row.model, row.version, row.region]
        state.add_metric([*labels, row.state], 1)
        if row.event_time is None:
            continue
        if row.state == "verified" and row.verified_at is not None:
            lag.add_metric(labels, (as_utc(row.verified_at) - as_utc(row.event_time)).total_seconds())
        elif row.state != "verified":
            age.add_metric(labels, now - as_utc(row.event_time).timestamp())
    for model, version, region in missing_replicas(catalogue, rows):
        state.add_metric([model, version, region, MISSING], 1)
    counts = gauge("mlp_replication_status_rows", "Replication status rows by state (every row)", ["state"])
    for row in conn.execute(sa.select(status.state, sa.func.count()).group_by(status.state)):
        counts.add_metric([row[0]], row[1])
    return [rpo, lag, age, state, counts]


def missing_replicas(catalogue: Catalogue, rows: list) -> list[tuple[str, str, str]]:
    """(model, version, region) of each catalogue region, other than the source, with no row for the model's
    newest version (the latest registry event, else the latest update, among ``rows``)."""
    newest: dict[str, tuple[datetime, str]] = {}
    for row in rows:
        when = as_utc(row.event_time or row.updated_at)
        if row.model not in newest or when > newest[row.model][0]:
            newest[row.model] = (when, row.version)
    missing = []
    for model, (_, version) in sorted(newest.items()):
        present = {row.region for row in rows if row.model == model and row.version == version}
        sources = {row.source_region for row in rows if row.model == model and row.version == version}
        missing += [
            (model, version, region.name) for region in catalogue.regions if region.name not in present | sources
        ]
    return missing


def failover_families(catalogue: Catalogue, conn: sa.Connection, now: float) -> Families:
    """Each region's health state, its record's writes, failovers made, and what the circuit breaker blocks."""
    names = [region.name for region in catalogue.regions]
    records = {
        row.region: row
        for row in conn.execute(
            sa.select(region_state.c.region, region_state.c.state, region_state.c.since, region_state.c.version).where(
                region_state.c.region.in_(names)
            )
        )
    }
    health = gauge(
        "mlp_region_health_state", "1 for the region's failover state, 0 for the others", ["region", "state"]
    )
    since = gauge(
        "mlp_region_health_state_since_timestamp_seconds", "Unix time the region entered its state", ["region"]
    )
    writes = CounterMetricFamily(
        "mlp_region_record_writes", "Writes of the region's failover record", labels=["region"]
    )
    for name, record in records.items():
        for candidate in State:
            health.add_metric([name, str(candidate)], float(record.state == candidate))
        since.add_metric([name], record.since)
        writes.add_metric([name], record.version)

    transitions = failover_transitions.c
    moved = dict(
        conn.execute(
            sa.select(transitions.region, sa.func.count())
            .where(transitions.to_state == str(State.FAILOVER), transitions.region.in_(names))
            .group_by(transitions.region)
        ).all()
    )
    moves = CounterMetricFamily(
        "mlp_failover_moves", "Failover moves made: transitions into FAILOVER", labels=["region"]
    )
    for name in names:
        moves.add_metric([name], moved.get(name, 0))

    ledger = failover_starts.c
    recent = conn.execute(
        sa.select(ledger.region, ledger.episode).where(ledger.started_at >= now - HOUR).limit(10_000)
    ).all()
    limit = catalogue.failover.max_failovers_per_hour
    unhealthy = {name: record.since for name, record in records.items() if record.state == str(State.UNHEALTHY)}
    entered = set()
    if unhealthy:
        episodes = [sa.and_(ledger.region == name, ledger.episode == episode) for name, episode in unhealthy.items()]
        entered = {row.region for row in conn.execute(sa.select(ledger.region).where(sa.or_(*episodes)))}
    blocked = gauge(
        "mlp_failover_blocked_by_breaker",
        "1 while the region is UNHEALTHY, its failover not started, and the breaker full",
        ["region"],
    )
    for name in names:
        others = [row for row in recent if (row.region, row.episode) != (name, unhealthy.get(name))]
        blocked.add_metric([name], float(name in unhealthy and name not in entered and len(others) >= limit))
    started = gauge("mlp_failover_breaker_starts_last_hour", "Failovers started in the last hour (the breaker's count)")
    started.add_metric([], len(recent))
    ceiling = gauge("mlp_failover_breaker_limit", "The circuit breaker's limit (failover.max_failovers_per_hour)")
    ceiling.add_metric([], limit)
    return [health, since, writes, moves, blocked, started, ceiling]


def dns_families(traffic: Route53Traffic) -> Families:
    """The weight of each region's record in the Route 53 weighted record set (``Route53Traffic.read``)."""
    weight = gauge("mlp_dns_weight", "The region's weight in the Route 53 weighted record (0 to 255)", ["region"])
    for name, value in sorted(traffic.read().weights.items()):
        weight.add_metric([name], value)
    return [weight]


def newest_report_day(store: ObjectStore, prefix: str, today: date) -> date | None:
    """The newest day of this month or the last with a JSON report (two listings, whatever the history)."""
    last_month = today.replace(day=1) - timedelta(days=1)
    days = [
        date.fromisoformat(key.split("/day=")[1][:10])
        for month in (f"{today:%Y-%m}", f"{last_month:%Y-%m}")
        for key in store.list_keys(f"{prefix}/reports/day={month}")
        if key.endswith("/report.json")
    ]
    return max(days, default=None)


def cost_families(catalogue: Catalogue, store: ObjectStore, now: float) -> Families:
    """The newest cost report's day, cost per provider, anomalies per provider and budget spend ratios."""
    from include.cost.store import report_key

    prefix = catalogue.cost.prefix
    day = newest_report_day(store, prefix, datetime.fromtimestamp(now, UTC).date())
    if day is None:
        return []
    report = json.loads(store.get_bytes(report_key(prefix, day, "json")))
    totals = report["totals"]
    report_day = gauge("mlp_cost_report_day_timestamp_seconds", "Unix time of 00:00 UTC of the newest report's day")
    report_day.add_metric([], datetime.combine(day, datetime.min.time(), UTC).timestamp())
    cost = gauge("mlp_cost_day_effective_cost", "Effective cost of the report's day", ["provider", "currency"])
    for row in totals["by_provider"]:
        cost.add_metric([row["provider"], report["currency"]], row["effective"])
    found = gauge("mlp_cost_report_anomalies", "Cost anomalies the newest report found", ["provider"])
    providers = totals["providers_with_data"] + totals["providers_missing"]
    for provider in sorted(set(providers) | {anomaly["provider"] for anomaly in report["anomalies"]}):
        found.add_metric([provider], sum(1 for anomaly in report["anomalies"] if anomaly["provider"] == provider))
    ratio = gauge(
        "mlp_cost_budget_spend_ratio",
        "Month-to-date (actual) or month-end forecast over the budget",
        ["provider", "region", "basis"],
    )
    for budget in report["budgets"]["items"]:
        labels = [budget["provider"], budget["region"] or ALL_REGIONS]
        ratio.add_metric([*labels, "actual"], budget["percent"] / 100)
        if budget["forecast_percent"] is not None:
            ratio.add_metric([*labels, "forecast"], budget["forecast_percent"] / 100)
    return [report_day, cost, found, ratio]


class PlatformCollector(Collector):
    """A ``prometheus_client`` collector that reads every source on each scrape (see the module docstring)."""

    def __init__(
        self,
        catalogue: Catalogue,
        engine: sa.Engine,
        traffic: Route53Traffic,
        cost_store: ObjectStore | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.catalogue = catalogue
        self.sources: dict[str, Callable[[float], Families]] = {
            "state": lambda now: state_families(catalogue, engine, now),
            "dns": lambda now: dns_families(traffic),
        }
        if catalogue.cost is not None:
            self.sources["cost"] = lambda now: cost_families(catalogue, cost_store, now)
        self.clock = clock

    def collect(self):
        now = self.clock()
        up = gauge(
            "mlp_exporter_source_up", "1 if the source was read at this scrape, 0 if the read failed", ["source"]
        )
        families: Families = []
        for name, read in self.sources.items():
            try:
                families += read(now)
            except Exception:  # one source down must not hide the others
                log.exception("reading the %s source failed; its metrics are left out of this scrape", name)
                up.add_metric([name], 0)
            else:
                up.add_metric([name], 1)
        return [*families, up]


def open_collector(catalogue: Catalogue) -> PlatformCollector:
    """The collector over the catalogue's state connection, Route 53 records and cost store."""
    from include.clouds.objectstore import store_for
    from include.clouds.route53 import Route53Traffic
    from include.state.engine import state_engine

    engine = state_engine(catalogue.replication.state_connection)
    cost_store = store_for(catalogue.cost_store_region) if catalogue.cost is not None else None
    return PlatformCollector(catalogue, engine, Route53Traffic(catalogue), cost_store)
