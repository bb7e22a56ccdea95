"""Anomalies: a service's effective cost on a day against its baseline and the day before.

A pure function of the daily costs (``include.cost.daily``) and the catalogue's anomaly rules; its docstring
states the rule and the numbers it uses.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from include.catalogue.cost import AnomalyRules
from include.cost.daily import SERIES_KEY, day_range, series_label, series_matrix

MIN_BASELINE_DAYS = 3  # fewer known baseline days than this: the baseline signal is not evaluated
MIN_RELATIVE_SPREAD = 0.05  # the baseline's spread is at least 5 % of its mean (flat-rate charges have std 0)

# Anomalies


def anomalies(daily: pd.DataFrame, day: date, rules: AnomalyRules) -> list[dict]:
    """Services whose effective cost in a region jumped on ``day``.

    Rule, per (provider, region, service) with a row on ``day``, on EffectiveCost: anomalous when
    cost >= ``min_daily_cost`` AND at least one signal fires:

    - ``day_over_day``: cost / previous day's cost >= ``day_over_day_ratio``. When the previous day's cost is
      zero or less (a new service, or a credit), any positive cost fires and the ratio is null. Not evaluated
      when the provider has no data on the previous day.
    - ``baseline``: cost > mean + ``baseline_sigmas`` x spread over the ``baseline_days`` days before ``day``.
      Only the provider's known days count (a day it has data, the service's missing row is a zero; a day it
      has none is left out, not read as zero); with fewer than 3 known days the signal is not evaluated.
      mean and std are over those days (std with ddof=1); spread = max(std, 5 % of |mean|), because flat-rate
      charges (a load balancer's hourly fee) have std 0 and a one-cent rise must not fire.

    Each anomaly says which signals fired, the ``expected`` cost (the baseline mean when the baseline was
    evaluated, else the previous day's cost) and the ``excess`` = cost - expected. A provider without data on
    ``day`` yields no anomalies (the report notes the missing day). Only usage is checked: a series with no
    Usage row on ``day`` (tax, a purchase, a credit) is not, because clouds book a month's tax and fees on
    its first day. Sorted by excess, largest first.
    """
    days = day_range(day - timedelta(days=rules.baseline_days), day)
    values, known = series_matrix(daily, days, "effective_cost")
    if daily.empty:
        return []
    today_rows = daily[daily["day"] == day]
    usage_today = today_rows[today_rows["usage"]].set_index(SERIES_KEY).index
    if values.empty or usage_today.empty:
        return []
    matrix = values.to_numpy(dtype=float)
    today, previous, previous_known = matrix[:, -1], matrix[:, -2], known[:, -2]
    baseline, baseline_known = matrix[:, :-1], known[:, :-1]
    count = baseline_known.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(baseline_known, baseline, 0.0).sum(axis=1) / count
        squares = np.where(baseline_known, (baseline - mean[:, None]) ** 2, 0.0).sum(axis=1)
        std = np.sqrt(squares / (count - 1))
    spread = np.maximum(std, MIN_RELATIVE_SPREAD * np.abs(mean))
    threshold = mean + rules.baseline_sigmas * spread

    found = []
    for row, key in enumerate(values.index):
        cost = float(today[row])
        if key not in usage_today or cost < rules.min_daily_cost:
            continue
        signals = []
        previous_cost = float(previous[row]) if previous_known[row] else None
        ratio = None
        if previous_cost is not None:
            if previous_cost > 0:
                ratio = cost / previous_cost
                if ratio >= rules.day_over_day_ratio:
                    signals.append("day_over_day")
            elif cost > 0:
                signals.append("day_over_day")
        baseline_evaluated = count[row] >= MIN_BASELINE_DAYS
        if baseline_evaluated and cost > threshold[row]:
            signals.append("baseline")
        if not signals:
            continue
        expected = float(mean[row]) if baseline_evaluated else previous_cost
        found.append(
            series_label(key)
            | {
                "day": day.isoformat(),
                "cost": cost,
                "signals": signals,
                "previous_day_cost": previous_cost,
                "day_over_day_ratio": ratio,
                "baseline_days": int(count[row]),
                "baseline_mean": float(mean[row]) if baseline_evaluated else None,
                "baseline_std": float(std[row]) if baseline_evaluated else None,
                "baseline_threshold": float(threshold[row]) if baseline_evaluated else None,
                "expected": expected,
                "excess": cost - expected,
            }
        )
    return sorted(found, key=lambda a: (-a["excess"], a["provider"], a["region"], a["service"]))


def anomaly_alert(anomaly: dict, currency: str) -> dict:
    """An anomaly as an alert dict (severity ``warning``), in the shape ``include.failover.notify`` sends."""
    signals = " and ".join(signal.replace("_", "-") for signal in anomaly["signals"])
    return {
        "kind": "cost_anomaly",
        "severity": "warning",
        "provider": anomaly["provider"],
        "region": anomaly["region"],
        "service": anomaly["service"],
        "day": anomaly["day"],
        "text": (
            f"Cost anomaly ({signals}): {anomaly['provider']} {anomaly['region']} {anomaly['service']} cost "
            f"{anomaly['cost']:,.2f} {currency} on {anomaly['day']}, expected {anomaly['expected']:,.2f} "
            f"(+{anomaly['excess']:,.2f})"
        ),
    }
