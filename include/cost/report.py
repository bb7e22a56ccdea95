"""The daily cost report's model: one JSON document of figures from FOCUS rows and the catalogue.

``build_report`` turns FOCUS rows and the catalogue's cost settings into a JSON-serialisable dict (the rules
are those of ``include.cost.anomalies``, ``include.cost.budgets`` and ``include.cost.right_sizing``);
``include.cost.report_html`` draws that dict as a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from include.catalogue import Catalogue
from include.catalogue.cost import CostConfig
from include.cost.anomalies import anomalies, anomaly_alert
from include.cost.budgets import budget_status, month_forecast
from include.cost.daily import billing_currency, daily_costs, day_range, days_with_data, top_movers
from include.cost.focus import FOCUS_VERSION
from include.cost.savings import (
    Utilisation,
    parse_utilisation,
    region_providers,
    right_sizing,
    savings_total,
    spot_candidates,
)
from include.errors import CostDataError

PERIOD_DAYS = 90  # the daily series and the chart
PROVIDER_ORDER = ("aws", "gcp", "azure")


def build_report(
    focus: pd.DataFrame,
    day: date,
    cost: CostConfig,
    catalogue: Catalogue,
    utilisation: Mapping | None = None,
) -> dict:
    """The report for ``day`` from FOCUS rows covering (at least) the 90 days ending on it.

    Rows after ``day`` are ignored. Trends, totals by day, movers and anomalies are on EffectiveCost; the
    month to date, the forecast and budgets on BilledCost (see ``include.cost.daily``). A provider with no
    rows on a day has no figure for it (null in the series, named in ``data_notes``), never a zero. Rows in
    a currency other than ``cost.reporting_currency`` raise ``CostDataError``. ``utilisation`` is in either
    form ``include.cost.savings.parse_utilisation`` reads.
    """
    currency = billing_currency(focus)
    if currency is not None and currency != cost.reporting_currency:
        raise CostDataError(f"FOCUS rows are in {currency}, the reporting currency is {cost.reporting_currency}")
    daily = daily_costs(focus)
    notes = []
    later = daily["day"] > day
    if later.any():
        notes.append(f"{int(later.sum())} daily figure(s) after {day} are left out of this report.")
        daily = daily[~later]
    days = day_range(day - timedelta(days=PERIOD_DAYS - 1), day)
    known = days_with_data(daily)
    providers = _providers(cost, catalogue, daily)
    notes += _coverage_notes(providers, known, days, day, cost.start_date)
    notes += _estimated_notes(daily[daily["day"].isin(days)])

    totals = _day_totals(daily, day, providers, known)
    month = _month_to_date(daily, day, providers)
    savings = _savings(cost, catalogue, parse_utilisation(utilisation or {}))
    notes += [
        f"Right-sizing: no utilisation for {row['workload']} in {row['region']}; not analysed."
        for row in savings["right_sizing"]
        if row["status"] == "no_data"
    ]
    found = anomalies(daily, day, cost.anomalies)
    budgets = budget_status(daily, cost.budgets, day, cost.budget_alert_percents, cost.reporting_currency)
    alerts = [status["alert"] for status in budgets if status["alert"]]
    alerts += [anomaly_alert(anomaly, cost.reporting_currency) for anomaly in found]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "day": day.isoformat(),
        "currency": cost.reporting_currency,
        "focus_version": FOCUS_VERSION,
        "cost_basis": {"trends": "EffectiveCost", "budgets": "BilledCost"},
        "headline": _headline(totals, month, budgets, savings, found),
        "totals": totals,
        "month_to_date": month,
        "series": _series(daily, days, providers, known, cost),
        "movers": top_movers(daily, day),
        "savings": savings,
        "anomalies": found,
        "budgets": {"alert_percents": sorted(set(cost.budget_alert_percents)), "items": budgets},
        "alerts": alerts,
        "data_notes": notes,
    }


def _providers(cost: CostConfig, catalogue: Catalogue, daily: pd.DataFrame) -> list[str]:
    """Providers expected to have data (configured sources, else the catalogue's clouds) and any that do."""
    expected = {p for p in PROVIDER_ORDER if getattr(cost.sources, p) is not None}
    expected = expected or {region.provider for region in catalogue.regions}
    present = set(daily["provider"])
    return [p for p in PROVIDER_ORDER if p in expected | present] + sorted(present - set(PROVIDER_ORDER))


def _ranges(days: list[date]) -> str:
    """Consecutive days as ranges: ``2026-11-03 to 2026-11-05, 2026-11-09``."""
    spans: list[list[date]] = []
    for current in sorted(days):
        if spans and current - spans[-1][1] == timedelta(days=1):
            spans[-1][1] = current
        else:
            spans.append([current, current])
    return ", ".join(str(a) if a == b else f"{a} to {b}" for a, b in spans)


def _coverage_notes(
    providers: list[str], known: dict[str, set[date]], days: list[date], day: date, start: date
) -> list[str]:
    notes = []
    for provider in providers:
        provider_days = known.get(provider, set())
        if day not in provider_days:
            notes.append(f"No {provider} data for {day}: its figures for the day are missing, not zero.")
        missing = [d for d in days if d >= start and d != day and d not in provider_days]
        if missing:
            notes.append(f"No {provider} data for {_ranges(missing)}: shown as gaps, not zero.")
    return notes


def _estimated_notes(daily: pd.DataFrame) -> list[str]:
    estimated = daily[daily["estimated"]]
    return [
        f"{provider} figures for {_ranges(list(set(rows['day'])))} are estimated by the source and may be restated."
        for provider, rows in estimated.groupby("provider")
    ]


def _sums(frame: pd.DataFrame, keys: list[str]) -> list[dict]:
    """Billed and effective sums per ``keys``, largest effective first."""
    grouped = frame.groupby(keys, as_index=False)[["billed_cost", "effective_cost"]].sum()
    grouped = grouped.sort_values(["effective_cost", *keys], ascending=[False] + [True] * len(keys))
    return [
        {key: row[key] for key in keys}
        | {"billed": float(row["billed_cost"]), "effective": float(row["effective_cost"])}
        for row in grouped.to_dict("records")
    ]


def _day_totals(daily: pd.DataFrame, day: date, providers: list[str], known: dict[str, set[date]]) -> dict:
    rows = daily[daily["day"] == day]
    with_data = [p for p in providers if day in known.get(p, set())]
    return {
        "billed": float(rows["billed_cost"].sum()) if with_data else None,
        "effective": float(rows["effective_cost"].sum()) if with_data else None,
        "providers_with_data": with_data,
        "providers_missing": [p for p in providers if p not in with_data],
        "by_provider": _sums(rows, ["provider"]),
        "by_region": _sums(rows, ["provider", "region"]),
        "by_service": _sums(rows, ["provider", "service"]),
    }


def _month_to_date(daily: pd.DataFrame, day: date, providers: list[str]) -> dict:
    """Billed and effective month to date, and the forecast: the sum of each provider's (null if any is null)."""
    month = daily[daily["day"].isin(day_range(day.replace(day=1), day))]
    by_provider = [
        {"provider": provider}
        | month_forecast(daily, day, provider)
        | {"effective": float(month.loc[month["provider"] == provider, "effective_cost"].sum())}
        for provider in providers
    ]
    forecasts = [row["forecast"] for row in by_provider]
    return {
        "month": f"{day:%Y-%m}",
        "through": day.isoformat(),
        "billed": float(month["billed_cost"].sum()),
        "effective": float(month["effective_cost"].sum()),
        "forecast": None if None in forecasts else float(sum(forecasts)),
        "by_provider": by_provider,
        "by_region": _sums(month, ["provider", "region"]),
    }


def _series(
    daily: pd.DataFrame, days: list[date], providers: list[str], known: dict[str, set[date]], cost: CostConfig
) -> dict:
    """Effective cost per day over the period, per provider and per (provider, region); null where unknown.

    ``anomaly_marks`` are the anomalies of every day of the period (the rules of ``include.cost.anomalies``).
    """
    period = daily[daily["day"].isin(days)]

    def values(rows: pd.DataFrame, provider: str) -> list[float | None]:
        per_day = rows.groupby("day")["effective_cost"].sum()
        return [float(per_day.get(d, 0.0)) if d in known.get(provider, set()) else None for d in days]

    marks = []
    for current in days:
        if any(current in known.get(p, set()) for p in providers):
            marks += anomalies(period, current, cost.anomalies)
    return {
        "days": [d.isoformat() for d in days],
        "by_provider": [{"provider": p, "values": values(period[period["provider"] == p], p)} for p in providers],
        "by_region": [
            {"provider": provider, "region": region, "values": values(rows, provider)}
            for (provider, region), rows in period.groupby(["provider", "region"])
        ],
        "anomaly_marks": [
            {key: mark[key] for key in ("day", "provider", "region", "service", "cost", "expected", "excess")}
            for mark in marks
        ],
    }


def _savings(cost: CostConfig, catalogue: Catalogue, utilisation: dict[tuple[str, str], Utilisation]) -> dict:
    providers = region_providers(catalogue)
    spot = spot_candidates(cost.workloads, cost.unit_prices, cost.spot_discount, providers)
    sizing = right_sizing(cost.workloads, utilisation, cost.unit_prices, providers, cost.spot_discount)
    return {
        "spot_discount": cost.spot_discount,
        "spot": spot,
        "right_sizing": sizing,
        "totals": savings_total(spot, sizing, cost.spot_discount),
    }


def _headline(totals: dict, month: dict, budgets: list[dict], savings: dict, found: list[dict]) -> dict:
    with_forecast = [b for b in budgets if b["forecast_percent"] is not None]
    worst = max(with_forecast, key=lambda b: b["forecast_percent"], default=None)
    return {
        "day_cost": totals["effective"],
        "day_billed": totals["billed"],
        "month_to_date": month["billed"],
        "forecast": month["forecast"],
        "budgets": len(budgets),
        "budgets_forecast_over": sum(1 for b in with_forecast if b["forecast_percent"] >= 100),
        "worst_budget": None
        if worst is None
        else {key: worst[key] for key in ("provider", "region", "monthly", "forecast", "forecast_percent")},
        "savings_monthly": savings["totals"]["monthly"],
        "anomalies": len(found),
    }
