"""Daily costs from FOCUS rows: one row per day, provider, region and service, and the movers among them.

Every function is pure: DataFrames in, plain values out. Each docstring states its rule and the numbers it
uses; that text is the specification the tests check by hand.

Which cost column serves which purpose, here and in ``include.cost.anomalies`` and ``include.cost.budgets``:

- budgets use **BilledCost**: a budget is checked against what will be invoiced;
- trends, movers and anomalies use **EffectiveCost**: commitments are spread over the usage they cover, so
  buying a reservation is not a spike and a day's figure reflects what was used that day.

A day "has data" for a provider when the provider has at least one FOCUS row that day. Where a provider has
data, a service with no row that day cost zero; where it has none, the day is unknown and is never read as zero.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from include.errors import CostDataError

NO_REGION = "global"  # RegionId is null for charges that belong to no region

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


# Series helpers


def series_matrix(daily: pd.DataFrame, days: list[date], column: str) -> tuple[pd.DataFrame, np.ndarray]:
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


def series_label(key: tuple[str, str, str]) -> dict[str, str]:
    """A series key as ``{"provider": ..., "region": ..., "service": ...}``."""
    return dict(zip(SERIES_KEY, key, strict=True))


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
    values, known = series_matrix(daily, days, "effective_cost")
    if values.empty:
        return []
    matrix = values.to_numpy(dtype=float)
    previous = matrix[:, :width].sum(axis=1)
    current = matrix[:, width:].sum(axis=1)
    change = current - previous
    comparable = known.all(axis=1) & (change != 0)
    order = sorted(np.flatnonzero(comparable), key=lambda row: (-abs(change[row]), values.index[row]))
    return [
        series_label(values.index[row])
        | {
            "previous": float(previous[row]),
            "current": float(current[row]),
            "change": float(change[row]),
            "change_percent": float(change[row] / previous[row] * 100) if previous[row] > 0 else None,
        }
        for row in order[:limit]
    ]
