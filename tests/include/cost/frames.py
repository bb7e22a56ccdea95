"""Hand-made FOCUS rows and daily-cost frames for the cost rules' tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pyarrow as pa

from include.cost.daily import DAILY_COLUMNS
from include.cost.focus import FOCUS_SCHEMA


def focus_row(start: datetime, provider: str, region: str | None, service: str | None, billed: float, **extra) -> dict:
    """One FOCUS row; EffectiveCost defaults to BilledCost."""
    return {
        "BilledCost": billed,
        "EffectiveCost": extra.pop("effective", billed),
        "BillingCurrency": "USD",
        "ChargePeriodStart": start,
        "ChargePeriodEnd": start + timedelta(hours=1),
        "ChargeCategory": "Usage",
        "ServiceName": service,
        "RegionId": region,
        "x_Provider": provider,
        "x_Estimated": False,
    } | extra


def focus_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as the object store returns them: through the FOCUS Arrow schema (absent columns null)."""
    return pa.Table.from_pylist(rows, schema=FOCUS_SCHEMA).to_pandas()


def daily_frame(*series: tuple[str, str, str, dict[date, float]]) -> pd.DataFrame:
    """A ``daily_costs``-shaped frame from (provider, region, service, {day: cost}); billed = effective."""
    rows = [
        {
            "day": day,
            "provider": p,
            "region": r,
            "service": s,
            "billed_cost": c,
            "effective_cost": c,
            "estimated": False,
            "usage": True,
        }
        for p, r, s, costs in series
        for day, c in costs.items()
    ]
    return pd.DataFrame(rows, columns=DAILY_COLUMNS)


def days_before(day: date, costs: list[float | None]) -> dict[date, float]:
    """``costs`` for the days ending on ``day`` (the last one is ``day``); None leaves the day out."""
    first = day - timedelta(days=len(costs) - 1)
    return {first + timedelta(days=i): c for i, c in enumerate(costs) if c is not None}
