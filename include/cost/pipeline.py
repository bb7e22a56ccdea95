"""The steps of the daily cost DAG, as plain functions over the catalogue (tests call them without a scheduler).

A run for day D covers the window D - lookback + 1 .. D, because clouds restate recent charges. Every step
replaces whole partitions (day x provider), so a rerun or a backfill of any day gives the same result:

1. ``extract_window``: one cloud's billing API for the window, split by UTC day into ``source`` partitions.
   An empty answer for a day whose partition already holds rows keeps those rows (a cloud does not un-bill
   a day; an empty answer is an extraction gap) and says so; an empty day never seen before is written
   empty, so later steps know it was asked for.
2. ``normalise_window``: each source partition to FOCUS, reconciled per day and currency against the source
   total before it is written to ``focus``.
3. ``build_daily_report``: 90 days of FOCUS rows, analysed and rendered, written next to the data.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta

import pyarrow.compute as pc

from include.catalogue import Catalogue
from include.catalogue.cost import CostConfig
from include.clouds.billing.schemas import SOURCE_SCHEMAS, conform
from include.clouds.objectstore import ObjectStore, store_for
from include.cost.focus import NORMALISERS, ExchangeRates, reconcile, rows_by_day, source_days, source_totals
from include.cost.store import partition_key, read_focus, read_partition, report_key, write_partition
from include.errors import CostNotConfigured

log = logging.getLogger(__name__)

REPORT_DAYS = 90
REPORT_COLUMNS = [
    "ChargePeriodStart",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "BillingCurrency",
    "ChargeCategory",
    "ServiceName",
    "ServiceCategory",
    "RegionId",
    "PricingCategory",
    "x_Provider",
    "x_Credits",
    "x_Estimated",
]


def cost_config(catalogue: Catalogue) -> CostConfig:
    if catalogue.cost is None:
        raise CostNotConfigured("the region catalogue has no cost: section; see config/regions.yaml")
    return catalogue.cost


def window(day: date, lookback_days: int) -> list[date]:
    """The days a run for ``day`` covers, oldest first."""
    if lookback_days < 1:
        raise ValueError(f"lookback_days must be at least 1, got {lookback_days}")
    return [day - timedelta(days=offset) for offset in range(lookback_days - 1, -1, -1)]


def days_to_load(catalogue: Catalogue, day: date, lookback_days: int) -> list[date]:
    """The window of a run for ``day``; the first run (no FOCUS data stored yet) loads ``cost.history_days``,
    so that its report already has a baseline to compare with."""
    cost = cost_config(catalogue)
    if not _store(catalogue).list_keys(f"{cost.prefix}/focus/"):
        lookback_days = max(lookback_days, cost.history_days)
    return window(day, lookback_days)


def _extractor(provider: str):
    if provider == "aws":
        from include.clouds.billing.aws import extract_aws

        return extract_aws
    if provider == "gcp":
        from include.clouds.billing.gcp import extract_gcp

        return extract_gcp
    from include.clouds.billing.azure import extract_azure

    return extract_azure


def _store(catalogue: Catalogue) -> ObjectStore:
    return store_for(catalogue.cost_store_region)


def _stored_rows(store: ObjectStore, key: str) -> int:
    info = store.head(key)
    return int(info.metadata.get("rows", "0")) if info is not None else 0


def extract_window(catalogue: Catalogue, provider: str, days: list[date], run_id: str) -> dict:
    """Pull ``days`` from the provider's billing API into ``source`` partitions; a summary for the task's XCom."""
    cost = cost_config(catalogue)
    source_config = getattr(cost.sources, provider)
    if source_config is None:
        raise CostNotConfigured(f"cost.sources has no {provider} entry")
    table = conform(provider, _extractor(provider)(source_config, days[0], days[-1]))
    notes = []
    per_day = rows_by_day(table, source_days(provider, table))
    outside = sorted(set(per_day) - set(days))
    if outside:
        notes.append(f"{provider}: {sum(per_day[d].num_rows for d in outside)} row(s) outside the window dropped")
    store, written = _store(catalogue), {}
    for day in days:
        rows = per_day.get(day, SOURCE_SCHEMAS[provider].empty_table())
        key = partition_key(cost.prefix, "source", day, provider)
        if rows.num_rows == 0:
            kept = _stored_rows(store, key)
            if kept:
                notes.append(f"{provider} {day}: the source returned no rows; kept the {kept} extracted before")
                continue
            notes.append(f"{provider} {day}: the source has no rows for this day")
        totals = {currency: total for (_, currency), total in source_totals(provider, rows).items()}
        write_partition(
            store,
            key,
            rows,
            {
                "provider": provider,
                "day": day,
                "rows": rows.num_rows,
                "totals": totals,
                "run_id": run_id,
                "extracted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        written[day.isoformat()] = {"rows": rows.num_rows, "totals": totals}
    for note in notes:
        log.warning(note)
    return {"provider": provider, "days": [d.isoformat() for d in days], "written": written, "notes": notes}


def normalise_window(catalogue: Catalogue, provider: str, days: list[date], run_id: str) -> dict:
    """Normalise the provider's ``source`` partitions for ``days`` into ``focus`` partitions, reconciled."""
    cost = cost_config(catalogue)
    rates, store = ExchangeRates.from_config(cost), _store(catalogue)
    written, notes = {}, []
    for day in days:
        found = read_partition(store, partition_key(cost.prefix, "source", day, provider))
        if found is None:
            raise LookupError(f"{provider} {day}: no source partition; run the extract step for this day first")
        source = conform(provider, found[0])
        normalised = NORMALISERS[provider](source, rates)
        totals = reconcile(provider, source, normalised.table)
        reporting_total = float(pc.sum(normalised.table["BilledCost"]).as_py() or 0.0)
        write_partition(
            store,
            partition_key(cost.prefix, "focus", day, provider),
            normalised.table,
            {
                "provider": provider,
                "day": day,
                "rows": normalised.table.num_rows,
                "run_id": run_id,
                "source_totals": {currency: total for (_, currency), total in totals.items()},
                "billed_cost": reporting_total,
                "currency": cost.reporting_currency,
                "notes": normalised.notes,
            },
        )
        written[day.isoformat()] = {"rows": normalised.table.num_rows, "billed_cost": round(reporting_total, 2)}
        notes += [f"{day}: {note}" for note in normalised.notes]
    return {"provider": provider, "written": written, "notes": notes}


def build_daily_report(catalogue: Catalogue, day: date, utilisation: dict, notes: list[str]) -> dict:
    """Analyse the 90 days up to ``day``, write the HTML and JSON report, and return the report."""
    from include.cost.report import build_report
    from include.cost.report_html import render_html

    cost, store = cost_config(catalogue), _store(catalogue)
    focus = read_focus(store, cost.prefix, window(day, REPORT_DAYS), cost.sources.providers, REPORT_COLUMNS)
    report = build_report(focus.to_pandas(), day, cost, catalogue, utilisation)
    report.setdefault("data_notes", []).extend(notes)
    store.put_bytes(report_key(cost.prefix, day, "json"), json.dumps(report, indent=1, default=str).encode())
    store.put_bytes(report_key(cost.prefix, day, "html"), render_html(report).encode())
    return report


def report_summary(catalogue: Catalogue, report: dict) -> dict:
    """What the report task returns (its XCom): where the report is, the headline figures and the alerts."""
    cost, store = cost_config(catalogue), _store(catalogue)
    day = date.fromisoformat(report["day"])
    headline = report["headline"]
    currency = report["currency"]
    text = (
        f"{day}: {headline['day_cost']:,.2f} {currency} (effective); month to date {headline['month_to_date']:,.2f}, "
        f"forecast {headline['forecast'] or 0:,.2f}; {headline['anomalies']} anomaly(ies); savings found "
        f"{headline['savings_monthly']:,.2f} {currency}/month"
    )
    return {
        "day": report["day"],
        "html": store.url(report_key(cost.prefix, day, "html")),
        "json": store.url(report_key(cost.prefix, day, "json")),
        "headline": text,
        "alerts": report["alerts"],
    }


def send_cost_alerts(catalogue: Catalogue, alerts: list[dict]) -> int:
    """Log the budget and anomaly alerts and POST them to ``cost.notify_connection``, if set."""
    from include.alerts import send_alerts

    return send_alerts(cost_config(catalogue).notify_connection, alerts, "cost")
