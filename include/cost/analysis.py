"""Savings, anomalies, budgets and movers, computed from FOCUS rows and the catalogue's cost settings.

Every function is pure: DataFrames and catalogue models in, plain values out. Each docstring states its rule
and the numbers it uses; that text is the specification the tests check by hand.

Which cost column serves which purpose:

- budgets use **BilledCost**: a budget is checked against what will be invoiced;
- trends, movers and anomalies use **EffectiveCost**: commitments are spread over the usage they cover, so
  buying a reservation is not a spike and a day's figure reflects what was used that day.

A day "has data" for a provider when the provider has at least one FOCUS row that day. Where a provider has
data, a service with no row that day cost zero; where it has none, the day is unknown and is never read as zero.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import NamedTuple

import numpy as np
import pandas as pd

from include.catalogue import AnomalyRules, Budget, Catalogue, UnitPrice, Workload
from include.errors import CostDataError

HOURS_PER_MONTH = 730  # 8760 hours in a 365-day year / 12: the month cloud price lists use
NO_REGION = "global"  # RegionId is null for charges that belong to no region
FORECAST_WINDOW_DAYS = 7  # the run rate of the month-end forecast
MIN_BASELINE_DAYS = 3  # fewer known baseline days than this: the baseline signal is not evaluated
MIN_RELATIVE_SPREAD = 0.05  # the baseline's spread is at least 5 % of its mean (flat-rate charges have std 0)

DAILY_COLUMNS = ["day", "provider", "region", "service", "billed_cost", "effective_cost", "estimated", "usage"]
SERIES_KEY = ["provider", "region", "service"]
_DAILY_DTYPES = {
    "day": object,
    "provider": object,
    "region": object,
    "service": object,
    "billed_cost": float,
    "effective_cost": float,
    "estimated": bool,
    "usage": bool,
}
_REQUIRED_FOCUS = [
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "ChargePeriodStart",
    "ChargeCategory",
    "ServiceName",
    "RegionId",
    "x_Provider",
    "x_Estimated",
]


class Utilisation(NamedTuple):
    """What one replica of a workload uses: a peak or high percentile over the sampling window."""

    cpu_cores: float
    memory_gib: float


# ---------------------------------------------------------------------------------------------------------------
# Daily costs


def billing_currency(focus: pd.DataFrame) -> str | None:
    """The one currency of the rows' money columns, ``None`` for no rows; mixed or missing currencies raise."""
    if focus.empty:
        return None
    currencies = focus["BillingCurrency"]
    if currencies.isna().any():
        raise CostDataError(f"{int(currencies.isna().sum())} FOCUS row(s) have no BillingCurrency")
    found = sorted(currencies.unique())
    if len(found) > 1:
        raise CostDataError(f"FOCUS rows are in several currencies ({', '.join(found)}); they cannot be summed")
    return found[0]


def daily_costs(focus: pd.DataFrame) -> pd.DataFrame:
    """Billed and effective cost per UTC day, provider, region and service.

    Rule: a row counts on the UTC day its ChargePeriodStart falls on (hourly and daily rows alike; naive
    timestamps are read as UTC). ``billed_cost`` sums BilledCost, ``effective_cost`` sums EffectiveCost (see
    the module docstring for which purpose uses which). A null RegionId is region ``"global"``; a null
    ServiceName is ``"(<ChargeCategory>)"``, e.g. ``"(Tax)"``. ``estimated`` is true when any row of the
    group is marked ``x_Estimated`` (the source may still restate it); ``usage`` is true when any row of the
    group is ChargeCategory Usage (false for tax, purchases and credits alone).

    Bad input raises ``CostDataError``: a missing column, a null or non-finite cost, a row without provider
    or ChargePeriodStart, or several currencies. An empty frame gives an empty result (no days have data).
    Columns: ``DAILY_COLUMNS``; ``day`` holds ``datetime.date`` values; sorted by day, provider, region, service.
    """
    missing = [column for column in _REQUIRED_FOCUS if column not in focus.columns]
    if missing:
        raise CostDataError(f"FOCUS frame lacks column(s) {', '.join(missing)}")
    if focus.empty:
        return pd.DataFrame({column: pd.Series(dtype=_DAILY_DTYPES[column]) for column in DAILY_COLUMNS})
    for column in ("BilledCost", "EffectiveCost"):
        values = pd.to_numeric(focus[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise CostDataError(f"{int(bad.sum())} FOCUS row(s) have a null, NaN or infinite {column}")
    for column in ("x_Provider", "ChargePeriodStart"):
        if focus[column].isna().any():
            raise CostDataError(f"{int(focus[column].isna().sum())} FOCUS row(s) have no {column}")
    billing_currency(focus)

    start = pd.to_datetime(focus["ChargePeriodStart"], utc=True)
    category = focus["ChargeCategory"].fillna("unassigned")
    rows = pd.DataFrame(
        {
            "day": start.dt.floor("D"),
            "provider": focus["x_Provider"].astype(str),
            "region": focus["RegionId"].fillna(NO_REGION).astype(str),
            "service": focus["ServiceName"].fillna("(" + category + ")").astype(str),
            "billed_cost": focus["BilledCost"].astype(float),
            "effective_cost": focus["EffectiveCost"].astype(float),
            "estimated": focus["x_Estimated"].fillna(False).astype(bool),
            "usage": (category == "Usage").astype(bool),
        }
    )
    daily = (
        rows.groupby(["day", *SERIES_KEY], sort=True)
        .agg(
            billed_cost=("billed_cost", "sum"),
            effective_cost=("effective_cost", "sum"),
            estimated=("estimated", "any"),
            usage=("usage", "any"),
        )
        .reset_index()
    )
    daily["day"] = [timestamp.date() for timestamp in daily["day"]]
    return daily[DAILY_COLUMNS]


def days_with_data(daily: pd.DataFrame) -> dict[str, set[date]]:
    """The days each provider has at least one row on (its known days)."""
    return {provider: set(days) for provider, days in daily.groupby("provider")["day"]}


def day_range(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


# ---------------------------------------------------------------------------------------------------------------
# Savings


def region_providers(catalogue: Catalogue) -> dict[str, str]:
    """Catalogue region name -> its provider (aws, gcp or azure)."""
    return {region.name: region.provider for region in catalogue.regions}


def _unit_price(workload: Workload, providers: Mapping[str, str], unit_prices: Mapping[str, UnitPrice]) -> UnitPrice:
    if workload.region not in providers:
        raise ValueError(f"workload {workload.name!r}: region {workload.region!r} is not in the catalogue")
    provider = providers[workload.region]
    if provider not in unit_prices:
        raise ValueError(f"workload {workload.name!r} runs on {provider}, which has no unit price")
    return unit_prices[provider]


def monthly_capacity_cost(replicas: int, cpu: float, memory_gib: float, price: UnitPrice) -> float:
    """replicas x (cpu x vcpu_hour + memory_gib x gib_hour) x 730 hours, at on-demand unit prices."""
    return replicas * (cpu * price.vcpu_hour + memory_gib * price.gib_hour) * HOURS_PER_MONTH


def spot_candidates(
    workloads: Iterable[Workload],
    unit_prices: Mapping[str, UnitPrice],
    spot_discount: float,
    providers: Mapping[str, str],
) -> list[dict]:
    """Workloads that could run on spot capacity, and what moving them saves per month.

    Rule: a workload is a candidate when it is stateless AND interruptible AND on on-demand capacity.
    Its monthly cost = replicas x (cpu_request x vcpu_hour + memory_request_gib x gib_hour) x 730 h, at its
    provider's on-demand unit prices (``providers`` maps catalogue region -> provider); the saving is
    cost x ``spot_discount`` (``cost.spot_discount``: spot price = on-demand x (1 - discount)).
    Sorted by saving, largest first.
    """
    candidates = []
    for workload in workloads:
        if not (workload.stateless and workload.interruptible and workload.capacity == "on_demand"):
            continue
        price = _unit_price(workload, providers, unit_prices)
        monthly = monthly_capacity_cost(workload.replicas, workload.cpu_request, workload.memory_request_gib, price)
        candidates.append(
            {
                "workload": workload.name,
                "region": workload.region,
                "provider": providers[workload.region],
                "replicas": workload.replicas,
                "cpu_request": workload.cpu_request,
                "memory_request_gib": workload.memory_request_gib,
                "monthly_cost": monthly,
                "monthly_saving": monthly * spot_discount,
            }
        )
    return sorted(candidates, key=lambda row: (-row["monthly_saving"], row["workload"], row["region"]))


def parse_utilisation(data: Mapping) -> dict[tuple[str, str], Utilisation]:
    """Utilisation keyed by (workload, catalogue region), from that form or the JSON form XCom carries.

    The JSON form is ``include.cost.utilisation``'s: ``{"<workload>@<region>": {"cpu_cores": .., "memory_gib": ..}}``
    (names never contain ``@``). Values may also be ``(cpu_cores, memory_gib)`` pairs. Anything else raises
    ``CostDataError``.
    """
    parsed = {}
    for key, value in data.items():
        name_and_region = tuple(key.split("@")) if isinstance(key, str) else tuple(key)
        if len(name_and_region) != 2:
            raise CostDataError(f"utilisation key {key!r} is not (workload, region) or 'workload@region'")
        if isinstance(value, Mapping):
            if not {"cpu_cores", "memory_gib"} <= value.keys():
                raise CostDataError(f"utilisation of {key!r} lacks cpu_cores or memory_gib: {value!r}")
            value = (value["cpu_cores"], value["memory_gib"])
        parsed[name_and_region] = Utilisation(*value)
    return parsed


def round_up_to_step(value: float, step: float) -> float:
    """``value`` rounded up to a whole number of ``step`` (a hair over a step, from float error, is not a step)."""
    return math.ceil(round(value / step, 9)) * step


def right_sizing(
    workloads: Iterable[Workload],
    utilisation: Mapping[tuple[str, str], Utilisation],
    unit_prices: Mapping[str, UnitPrice],
    providers: Mapping[str, str],
    spot_discount: float,
    *,
    headroom: float = 0.15,
    cpu_step: float = 0.25,
    memory_step_gib: float = 0.25,
    cpu_floor: float = 0.25,
    memory_floor_gib: float = 0.5,
    min_reduction: float = 0.2,
) -> list[dict]:
    """Smaller CPU and memory requests for workloads that use much less than they request.

    ``utilisation`` maps (workload name, catalogue region) to what one replica uses: a peak or high percentile
    of CPU cores and memory GiB over the sampling window. Rule, per resource:

    - recommended = used x (1 + headroom), rounded up to a step, and at least the floor. Headroom 15 % is the
      Kubernetes VPA recommender's default safety margin; steps of 0.25 vCPU / 0.25 GiB give values people
      write as they are; floors of 0.25 vCPU / 0.5 GiB keep a Python serving process alive through start-up
      (imports, model load) however idle it is later.
    - the recommendation replaces the request only when it is at least ``min_reduction`` (20 %) below it:
      a smaller cut is within the noise of a week's peak and not worth a rollout. Otherwise the request stays.

    Monthly saving = replicas x (CPU cut x vcpu_hour + memory cut x gib_hour) x 730 h at the provider's
    on-demand unit prices, times (1 - ``spot_discount``) for a workload already on spot capacity.

    Every workload gets one row with ``status``: ``resize`` (a cut is recommended), ``keep`` (no meaningful
    cut) or ``no_data`` (no utilisation: skipped, never read as zero use). Utilisation that is negative or not
    finite raises ``CostDataError``. Sorted: resizes by saving, largest first, then keeps, then no data.
    """
    rows = []
    for workload in workloads:
        price = _unit_price(workload, providers, unit_prices)
        row = {
            "workload": workload.name,
            "region": workload.region,
            "provider": providers[workload.region],
            "capacity": workload.capacity,
            "replicas": workload.replicas,
            "cpu_request": workload.cpu_request,
            "memory_request_gib": workload.memory_request_gib,
        }
        used = utilisation.get((workload.name, workload.region))
        if used is None:
            rows.append(row | {"status": "no_data"})
            continue
        used = Utilisation(*used)
        if not all(math.isfinite(value) and value >= 0 for value in used):
            raise CostDataError(f"workload {workload.name!r} in {workload.region}: utilisation {used} is not usable")
        cpu = _recommended(used.cpu_cores, workload.cpu_request, headroom, cpu_step, cpu_floor, min_reduction)
        memory = _recommended(
            used.memory_gib, workload.memory_request_gib, headroom, memory_step_gib, memory_floor_gib, min_reduction
        )
        price_factor = 1 - spot_discount if workload.capacity == "spot" else 1.0
        saving = price_factor * monthly_capacity_cost(
            workload.replicas, workload.cpu_request - cpu, workload.memory_request_gib - memory, price
        )
        resize = cpu < workload.cpu_request or memory < workload.memory_request_gib
        rows.append(
            row
            | {
                "status": "resize" if resize else "keep",
                "cpu_used": used.cpu_cores,
                "memory_used_gib": used.memory_gib,
                "cpu_recommended": cpu,
                "memory_recommended_gib": memory,
                "monthly_saving": saving,
            }
        )
    order = {"resize": 0, "keep": 1, "no_data": 2}
    return sorted(rows, key=lambda r: (order[r["status"]], -r.get("monthly_saving", 0.0), r["workload"], r["region"]))


def _recommended(
    used: float, request: float, headroom: float, step: float, floor: float, min_reduction: float
) -> float:
    candidate = max(floor, round_up_to_step(used * (1 + headroom), step))
    return candidate if candidate <= request * (1 - min_reduction) + 1e-9 else request


def savings_total(spot: list[dict], sizing: list[dict], spot_discount: float) -> dict[str, float]:
    """Monthly savings of both analyses together, without counting twice what they share.

    Rule: total = spot savings + right-sizing savings - overlap. A workload in both is right-sized first,
    then moved to spot; the spot saving then applies to the smaller cost, so its spot saving shrinks by
    (right-sizing saving x spot_discount): that is the overlap.
    """
    spot_total = sum(row["monthly_saving"] for row in spot)
    resized = {(row["workload"], row["region"]): row["monthly_saving"] for row in sizing if row["status"] == "resize"}
    sizing_total = sum(resized.values())
    overlap = sum(resized.get((row["workload"], row["region"]), 0.0) * spot_discount for row in spot)
    return {
        "spot_monthly": spot_total,
        "right_sizing_monthly": sizing_total,
        "overlap_monthly": overlap,
        "monthly": spot_total + sizing_total - overlap,
    }


# ---------------------------------------------------------------------------------------------------------------
# Series helpers


def _series_matrix(daily: pd.DataFrame, days: list[date], column: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``column`` per (provider, region, service) x ``days`` (0 where no row) and a mask of the known cells."""
    window = daily[daily["day"].isin(days)].astype({column: float})
    values = window.pivot_table(index=SERIES_KEY, columns="day", values=column, aggfunc="sum", fill_value=0.0)
    values = values.reindex(columns=days, fill_value=0.0)
    known_days = days_with_data(window)
    known = np.array(
        [[day in known_days.get(provider, ()) for day in days] for provider in values.index.get_level_values(0)],
        dtype=bool,
    ).reshape(len(values), len(days))
    return values, known


def _series_label(key: tuple[str, str, str]) -> dict[str, str]:
    return dict(zip(SERIES_KEY, key, strict=True))


# ---------------------------------------------------------------------------------------------------------------
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
    values, known = _series_matrix(daily, days, "effective_cost")
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
            _series_label(key)
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


# ---------------------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------------------
# Movers


def top_movers(daily: pd.DataFrame, day: date, limit: int = 5) -> dict[str, list[dict]]:
    """The (provider, region, service) series whose effective cost changed most, day over day and week over week.

    Rule, on EffectiveCost: ``day_over_day`` compares ``day`` with the day before; ``week_over_week`` compares
    the 7 days ending on ``day`` with the 7 days before them (sums). Change = current - previous; ranked by
    |change|, largest first, at most ``limit`` each; unchanged series are left out. A provider's series are
    compared only when it has data on every day compared (a gap would look like a drop). ``change_percent``
    = change / previous x 100, null when previous <= 0.
    """
    return {
        "day_over_day": _movers(daily, day_range(day - timedelta(days=1), day), 1, limit),
        "week_over_week": _movers(daily, day_range(day - timedelta(days=13), day), 7, limit),
    }


def _movers(daily: pd.DataFrame, days: list[date], width: int, limit: int) -> list[dict]:
    values, known = _series_matrix(daily, days, "effective_cost")
    if values.empty:
        return []
    matrix = values.to_numpy(dtype=float)
    previous = matrix[:, :width].sum(axis=1)
    current = matrix[:, width:].sum(axis=1)
    change = current - previous
    comparable = known.all(axis=1) & (change != 0)
    order = sorted(np.flatnonzero(comparable), key=lambda row: (-abs(change[row]), values.index[row]))
    return [
        _series_label(values.index[row])
        | {
            "previous": float(previous[row]),
            "current": float(current[row]),
            "change": float(change[row]),
            "change_percent": float(change[row] / previous[row] * 100) if previous[row] > 0 else None,
        }
        for row in order[:limit]
    ]
