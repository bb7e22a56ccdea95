"""Budgets and the month-end forecast, on hand-made series whose expected figures are worked out in the comments."""

from __future__ import annotations

from datetime import date

import pytest

from include.catalogue.cost import Budget
from include.cost.budgets import budget_status, month_forecast
from tests.include.cost.frames import daily_frame, days_before

approx = pytest.approx


# --- budgets ----------------------------------------------------------------------------------------------------


def test_budget_forecast_and_the_threshold_each_alert_names():
    nov = date(2026, 11, 10)  # November has 30 days: 20 left after the 10th
    daily = daily_frame(
        ("aws", "us-west-2", "EC2", days_before(nov, [50] * 7 + [100] * 10)),  # Oct 25-31 at 50, Nov 1-10 at 100
        ("aws", "eu-west-1", "S3", days_before(nov, [20] * 10)),  # Nov 1-10
    )
    budgets = [
        Budget(provider="aws", region="us-west-2", monthly=3000),
        Budget(provider="aws", monthly=2000),
        Budget(provider="aws", region="us-west-2", monthly=900),
        Budget(provider="aws", region="eu-west-1", monthly=700),
        Budget(provider="aws", region="eu-west-1", monthly=5000),
        Budget(provider="gcp", region="europe-west1", monthly=1000),
    ]
    west, total, small, eu, eu_large, gcp = budget_status(daily, budgets, nov, [100, 50, 80], currency="USD")

    # us-west-2: month to date 10 x 100 = 1000 (33 %); run rate Nov 4-10 = 100; forecast 1000 + 100 x 20 = 3000,
    # 100 % of 3000: the forecast reaches 100 % (at the threshold counts), the actual no threshold
    assert (west["month_to_date"], west["run_rate"], west["days_left"], west["forecast"]) == (1000, 100, 20, 3000)
    assert west["percent"] == approx(100 / 3) and west["forecast_percent"] == approx(100.0)
    assert {k: west["alert"][k] for k in ("threshold", "crossed_by", "severity")} == {
        "threshold": 100, "crossed_by": "forecast", "severity": "warning"}  # fmt: skip
    assert west["alert"]["text"] == (
        "Budget aws us-west-2: month-end forecast 3,000.00 USD is 100% of the monthly 3,000.00 USD, past the 100% "
        "threshold (month to date 1,000.00 through 2026-11-10)"
    )

    # all aws regions: 1000 + 10 x 20 = 1200 (60 %: past 50); run rate 120; forecast 1200 + 120 x 20 = 3600 (180 %)
    assert (total["month_to_date"], total["forecast"]) == (1200, 3600)
    assert (total["alert"]["threshold"], total["alert"]["crossed_by"]) == (100, "forecast")

    # 1000 of 900 = 111 %: the actual crossed 100, as did the forecast: the actual is named, critical
    assert (small["alert"]["threshold"], small["alert"]["crossed_by"], small["alert"]["severity"]) == (
        100, "actual", "critical")  # fmt: skip

    # eu-west-1 at 700: month to date 200 (29 %), forecast 200 + 20 x 20 = 600 (86 %): forecast past 80, info
    assert (eu["forecast"], eu["alert"]["threshold"], eu["alert"]["crossed_by"], eu["alert"]["severity"]) == (
        600, 80, "forecast", "info")  # fmt: skip
    # at 5000: 4 % and 12 %: no alert
    assert eu_large["alert"] is None

    # gcp has no data at all: nothing spent that is known, no run rate, no forecast, no alert; every day missing
    assert (gcp["month_to_date"], gcp["run_rate"], gcp["forecast"], gcp["alert"]) == (0, None, None, None)
    assert len(gcp["missing_days"]) == 10


def test_forecast_across_the_month_boundary_and_on_the_last_day():
    daily = daily_frame(("aws", "us-west-2", "EC2", days_before(date(2026, 12, 1), [100] * 10 + [170])))
    # December 1st: month to date 170; run rate Nov 25 - Dec 1 = (6 x 100 + 170) / 7 = 110; 30 days left
    dec = month_forecast(daily, date(2026, 12, 1), "aws")
    assert (dec["month_to_date"], dec["run_rate"], dec["days_left"]) == (170, approx(110), 30)
    assert dec["forecast"] == approx(170 + 110 * 30)  # 3470
    # November 30th: no day left, forecast = month to date = Nov 21-30 = 10 x 100 (the rows start on Nov 21)
    last = month_forecast(daily, date(2026, 11, 30), "aws")
    assert (last["days_left"], last["month_to_date"], last["forecast"]) == (0, 1000, 1000)
    assert last["missing_days"][:1] == ["2026-11-01"] and len(last["missing_days"]) == 20
    # February: 28 days in 2027, 29 in 2028
    assert month_forecast(daily, date(2027, 2, 28), "aws")["days_left"] == 0
    assert month_forecast(daily, date(2028, 2, 28), "aws")["days_left"] == 1


def test_forecast_run_rate_leaves_out_days_without_data():
    costs = days_before(date(2026, 11, 10), [100, 100, 100, 100, 100, 100, 100, None, 130, 130])  # no Nov 8
    daily = daily_frame(("aws", "us-west-2", "EC2", costs))
    figures = month_forecast(daily, date(2026, 11, 10), "aws")
    # known days among Nov 4-10: 4, 5, 6, 7, 9, 10 -> (4 x 100 + 2 x 130) / 6 = 110; 7 x 100 + 2 x 130 = 960
    assert (figures["run_rate_days"], figures["run_rate"], figures["month_to_date"]) == (6, approx(110), 960)
    assert figures["forecast"] == approx(960 + 110 * 20)
    assert figures["missing_days"] == ["2026-11-08"]
