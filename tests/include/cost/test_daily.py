"""Daily costs and movers, on small hand-made rows whose expected figures are worked out in the comments."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest

from include.catalogue.cost import AnomalyRules
from include.cost.anomalies import anomalies
from include.cost.daily import DAILY_COLUMNS, daily_costs, top_movers
from include.errors import CostDataError
from tests.include.cost.frames import daily_frame, days_before, focus_frame, focus_row

approx = pytest.approx
DAY = date(2026, 11, 20)  # the day the movers are computed for


# --- daily_costs ------------------------------------------------------------------------------------------------


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def test_daily_costs_sums_hourly_and_daily_rows_per_utc_day():
    rows = [
        focus_row(at(2), "aws", "us-west-2", "EC2", 10.0, effective=8.0, x_Estimated=True),  # a daily row
        focus_row(at(2), "aws", "us-west-2", "EC2", 2.5, effective=2.0),
        focus_row(at(2, 22), "gcp", "europe-west1", "Compute Engine", 3.0),  # hourly rows either side of midnight
        focus_row(at(2, 23), "gcp", "europe-west1", "Compute Engine", 4.0),
        focus_row(at(3, 0), "gcp", "europe-west1", "Compute Engine", 5.0),
        focus_row(at(3), "aws", None, "Route 53", 1.0),  # no region
        focus_row(at(3), "aws", None, None, 0.4, ChargeCategory="Tax"),  # tax: no service
    ]
    daily = daily_costs(focus_frame(rows))
    assert list(daily.columns) == DAILY_COLUMNS
    assert daily.to_dict("records") == [
        # EC2 on the 2nd: billed 10 + 2.5 = 12.5, effective 8 + 2 = 10; one of its rows is estimated
        {"day": date(2026, 11, 2), "provider": "aws", "region": "us-west-2", "service": "EC2", "billed_cost": 12.5,
         "effective_cost": 10.0, "estimated": True, "usage": True},
        # 22:00 and 23:00 UTC of the 2nd: 3 + 4 = 7
        {"day": date(2026, 11, 2), "provider": "gcp", "region": "europe-west1", "service": "Compute Engine",
         "billed_cost": 7.0, "effective_cost": 7.0, "estimated": False, "usage": True},
        {"day": date(2026, 11, 3), "provider": "aws", "region": "global", "service": "(Tax)", "billed_cost": 0.4,
         "effective_cost": 0.4, "estimated": False, "usage": False},  # tax is not usage,
        {"day": date(2026, 11, 3), "provider": "aws", "region": "global", "service": "Route 53", "billed_cost": 1.0,
         "effective_cost": 1.0, "estimated": False, "usage": True},
        # 00:00 UTC of the 3rd belongs to the 3rd
        {"day": date(2026, 11, 3), "provider": "gcp", "region": "europe-west1", "service": "Compute Engine",
         "billed_cost": 5.0, "effective_cost": 5.0, "estimated": False, "usage": True},
    ]  # fmt: skip


@pytest.mark.parametrize("column", ["BilledCost", "EffectiveCost"])
@pytest.mark.parametrize("bad", [None, math.nan, math.inf])
def test_daily_costs_refuses_a_missing_or_non_finite_cost(column, bad):
    rows = [focus_row(at(2), "aws", "us-west-2", "EC2", 1.0), focus_row(at(2), "aws", "us-west-2", "S3", 1.0)]
    rows[1][column] = bad
    with pytest.raises(CostDataError, match=f"1 FOCUS row\\(s\\) have a null, NaN or infinite {column}"):
        daily_costs(focus_frame(rows))


def test_daily_costs_refuses_mixed_currencies_and_missing_columns():
    rows = [focus_row(at(2), "aws", "us-west-2", "EC2", 1.0), focus_row(at(2), "gcp", "europe-west1", "GCE", 1.0)]
    rows[1]["BillingCurrency"] = "EUR"
    with pytest.raises(CostDataError, match="several currencies \\(EUR, USD\\)"):
        daily_costs(focus_frame(rows))
    with pytest.raises(CostDataError, match="lacks column\\(s\\) x_Provider"):
        daily_costs(focus_frame(rows[:1]).drop(columns=["x_Provider"]))


def test_daily_costs_of_no_rows_is_empty():
    daily = daily_costs(focus_frame([]))
    assert daily.empty and list(daily.columns) == DAILY_COLUMNS
    assert anomalies(daily, date(2026, 11, 2), AnomalyRules()) == []
    assert top_movers(daily, date(2026, 11, 2)) == {"day_over_day": [], "week_over_week": []}


# --- movers -----------------------------------------------------------------------------------------------------


def test_top_movers_day_over_day_and_week_over_week():
    daily = daily_frame(
        ("aws", "us-west-2", "EC2", days_before(DAY, [10] * 7 + [12] * 6 + [30])),
        ("aws", "us-west-2", "S3", days_before(DAY, [50] * 13 + [45])),
        ("aws", "eu-west-1", "SageMaker", {DAY: 8}),
        ("aws", "us-west-2", "KMS", days_before(DAY, [1] * 14)),  # unchanged: left out
        ("gcp", "europe-west1", "GCE", days_before(DAY, [5] * 3 + [None] + [5] * 9 + [500])),  # gap 10 days ago
        ("azure", "eastus", "VM", {DAY: 900}),  # no data the day before: not compared
    )
    movers = top_movers(daily, DAY, limit=3)
    day_over_day = [
        (m["service"], m["previous"], m["current"], m["change"], m["change_percent"]) for m in movers["day_over_day"]
    ]
    # gcp 5 -> 500 (+495, +9900 %); EC2 12 -> 30 (+18, +150 %); SageMaker 0 -> 8 (new); S3 -5 is 4th
    assert day_over_day == [("GCE", 5, 500, 495, 9900), ("EC2", 12, 30, 18, 150), ("SageMaker", 0, 8, 8, None)]
    week = [(m["service"], m["previous"], m["current"], m["change"]) for m in movers["week_over_week"]]
    # EC2: 7 x 10 = 70 -> 6 x 12 + 30 = 102 (+32); S3: 350 -> 6 x 50 + 45 = 345 (-5); SageMaker 0 -> 8;
    # gcp has a gap in the 14 days: not compared
    assert week == [("EC2", 70, 102, 32), ("SageMaker", 0, 8, 8), ("S3", 350, 345, -5)]
    assert movers["week_over_week"][0]["change_percent"] == approx(32 / 70 * 100)
