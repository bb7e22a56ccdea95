"""Budgets: month to date and month-end forecast on billed cost, against each budget and its alert thresholds.

Pure functions of the daily costs (``include.cost.daily``) and the catalogue's budgets; each docstring
states its rule and the numbers it uses.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date, timedelta

import pandas as pd

from include.catalogue.cost import Budget
from include.cost.daily import day_range, days_with_data

FORECAST_WINDOW_DAYS = 7  # the run rate of the month-end forecast

# Budgets


def month_forecast(daily: pd.DataFrame, day: date, provider: str, region: str | None = None) -> dict:
    """Month-to-date billed cost through ``day`` and its month-end forecast, for a provider (and region).

    Rule, on BilledCost: month-to-date = the sum from the 1st of ``day``'s month through ``day``. Run rate =
    the mean daily cost over the provider's known days among the 7 days ending on ``day`` (these may reach
    into the previous month; days without data are left out, not read as zero). Forecast = month-to-date +
    run rate x days left in the month after ``day`` (0 on the last day: forecast = month-to-date). With no
    known day in the 7, the run rate and forecast are null unless no days are left. ``missing_days`` lists
    the month's days through ``day`` the provider has no data for: month-to-date does not cover them.
    """
    rows = daily[daily["provider"] == provider]
    if region is not None:
        rows = rows[rows["region"] == region]
    known = days_with_data(daily[daily["provider"] == provider]).get(provider, set())
    month_days = day_range(day.replace(day=1), day)
    month_to_date = float(rows.loc[rows["day"].isin(month_days), "billed_cost"].sum())
    window = [d for d in day_range(day - timedelta(days=FORECAST_WINDOW_DAYS - 1), day) if d in known]
    run_rate = float(rows.loc[rows["day"].isin(window), "billed_cost"].sum()) / len(window) if window else None
    days_left = calendar.monthrange(day.year, day.month)[1] - day.day
    if days_left == 0:
        forecast = month_to_date
    else:
        forecast = None if run_rate is None else month_to_date + run_rate * days_left
    return {
        "month_to_date": month_to_date,
        "run_rate": run_rate,
        "run_rate_days": len(window),
        "days_left": days_left,
        "forecast": forecast,
        "missing_days": [d.isoformat() for d in month_days if d not in known],
    }


def budget_status(
    daily: pd.DataFrame, budgets: Iterable[Budget], day: date, alert_percents: Iterable[int], currency: str = "USD"
) -> list[dict]:
    """Each budget's month-to-date actual, month-end forecast (see ``month_forecast``) and alert.

    Rule: percent = actual / monthly budget x 100, forecast_percent likewise. A threshold of
    ``alert_percents`` (``cost.budget_alert_percents``, e.g. 50, 80, 100) is crossed when the percent is at
    or above it. One alert per budget: the highest threshold crossed by actual or forecast; when both cross
    the same highest one, the actual is named (it has happened). Severity: ``critical`` when the actual
    reached a threshold of 100 or more, ``warning`` when only the forecast did, ``info`` below 100.
    No threshold crossed: ``alert`` is null.
    """
    thresholds = sorted(set(alert_percents))
    statuses = []
    for budget in budgets:
        figures = month_forecast(daily, day, budget.provider, budget.region)
        percent = figures["month_to_date"] / budget.monthly * 100
        forecast_percent = None if figures["forecast"] is None else figures["forecast"] / budget.monthly * 100
        status = {
            "provider": budget.provider,
            "region": budget.region,
            "monthly": budget.monthly,
            "day": day.isoformat(),
            **figures,
            "percent": percent,
            "forecast_percent": forecast_percent,
        }
        status["alert"] = _budget_alert(status, thresholds, currency)
        statuses.append(status)
    return statuses


def _budget_alert(status: dict, thresholds: list[int], currency: str) -> dict | None:
    by_actual = max((t for t in thresholds if status["percent"] >= t), default=None)
    by_forecast = max(
        (t for t in thresholds if status["forecast_percent"] is not None and status["forecast_percent"] >= t),
        default=None,
    )
    if by_actual is None and by_forecast is None:
        return None
    if by_forecast is not None and (by_actual is None or by_forecast > by_actual):
        threshold, crossed_by, figure, percent = by_forecast, "forecast", status["forecast"], status["forecast_percent"]
        severity = "warning" if threshold >= 100 else "info"
    else:
        threshold, crossed_by, figure, percent = by_actual, "actual", status["month_to_date"], status["percent"]
        severity = "critical" if threshold >= 100 else "info"
    scope = f"{status['provider']} {status['region'] or 'all regions'}"
    what = "month-end forecast" if crossed_by == "forecast" else "month-to-date cost"
    return {
        "kind": "budget",
        "severity": severity,
        "provider": status["provider"],
        "region": status["region"],
        "day": status["day"],
        "threshold": threshold,
        "crossed_by": crossed_by,
        "text": (
            f"Budget {scope}: {what} {figure:,.2f} {currency} is {percent:.0f}% of the monthly "
            f"{status['monthly']:,.2f} {currency}, past the {threshold}% threshold "
            f"(month to date {status['month_to_date']:,.2f} through {status['day']})"
        ),
    }
