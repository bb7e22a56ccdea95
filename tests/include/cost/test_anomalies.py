"""The anomaly rules, on small hand-made series whose expected figures are worked out in the comments."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from include.catalogue.cost import AnomalyRules
from include.cost.anomalies import anomalies
from tests.include.cost.frames import daily_frame, days_before

approx = pytest.approx


# --- anomalies --------------------------------------------------------------------------------------------------

DAY = date(2026, 11, 20)
RULES = AnomalyRules(min_daily_cost=5, day_over_day_ratio=1.5, baseline_days=5, baseline_sigmas=2)


def test_anomalies_signals_baseline_and_minimum_cost():
    daily = daily_frame(
        ("aws", "us-west-2", "steady", days_before(DAY, [10, 10, 10, 10, 10, 10])),
        # 12 / 8 = 1.5: day over day at the ratio exactly. Baseline 20, 4, 20, 4, 8: mean 11.2,
        # squares 77.44 + 51.84 + 77.44 + 51.84 + 10.24 = 268.8, std sqrt(268.8 / 4) = 8.198; 11.2 + 2 x 8.198 > 12
        ("aws", "us-west-2", "ratio", days_before(DAY, [20, 4, 20, 4, 8, 12])),
        # baseline mean 10, std sqrt(0.5 / 4) = 0.354 < 5 % of 10 = 0.5: threshold 10 + 2 x 0.5 = 11 < 14;
        # 14 / 10 = 1.4 < 1.5: baseline only
        ("aws", "us-west-2", "baseline", days_before(DAY, [10, 10.5, 9.5, 10, 10, 14])),
        # flat 20: std 0, spread 5 % x 20 = 1, threshold 22: 20.5 is no anomaly
        ("aws", "us-west-2", "flat", days_before(DAY, [20, 20, 20, 20, 20, 20.5])),
        # below the 5.00 minimum although both signals would fire
        ("aws", "us-west-2", "tiny", days_before(DAY, [1, 1, 1, 1, 1, 4.99])),
        # at the minimum: 5 / 1 = 5 >= 1.5; threshold 1 + 2 x 0.05 = 1.1 < 5
        ("aws", "us-west-2", "at-min", days_before(DAY, [1, 1, 1, 1, 1, 5])),
        # new: aws has data on every baseline day, so the missing rows are zeros: mean 0, threshold 0 < 6,
        # previous day 0 -> day over day fires with no ratio
        ("aws", "us-west-2", "new", {DAY: 6}),
        # gcp has data on only 2 of the 5 baseline days: too few, baseline not evaluated (were the 3 missing
        # days read as zero, mean 4, std 5.48, threshold 14.95 < 16 would fire); 16 / 10 = 1.6
        ("gcp", "europe-west1", "vertex", days_before(DAY, [None, None, None, 10, 10, 16])),
        # azure has no data the day before: day over day not evaluated; baseline of 4 known days, mean 10,
        # spread 0.5, threshold 11 < 30
        ("azure", "eastus", "vm", days_before(DAY, [10, 10, 10, 10, None, 30])),
    )
    found = anomalies(daily, DAY, RULES)
    summary = [(a["provider"], a["service"], a["signals"], a["expected"], a["excess"]) for a in found]
    assert summary == [
        ("azure", "vm", ["baseline"], 10.0, 20.0),
        ("aws", "new", ["day_over_day", "baseline"], 0.0, 6.0),
        ("gcp", "vertex", ["day_over_day"], 10.0, 6.0),  # no baseline: expected is the previous day
        ("aws", "at-min", ["day_over_day", "baseline"], 1.0, 4.0),
        ("aws", "baseline", ["baseline"], approx(10.0), approx(4.0)),
        ("aws", "ratio", ["day_over_day"], approx(11.2), approx(0.8)),
    ]
    by_service = {a["service"]: a for a in found}
    assert by_service["ratio"]["day_over_day_ratio"] == 1.5
    assert by_service["ratio"]["baseline_std"] == approx(math.sqrt(268.8 / 4))
    assert by_service["ratio"]["baseline_threshold"] == approx(11.2 + 2 * math.sqrt(268.8 / 4))
    assert by_service["baseline"]["baseline_threshold"] == approx(11.0)
    assert by_service["new"]["day_over_day_ratio"] is None and by_service["new"]["previous_day_cost"] == 0
    assert by_service["vm"]["previous_day_cost"] is None and by_service["vm"]["baseline_days"] == 4
    assert by_service["vertex"]["baseline_mean"] is None and by_service["vertex"]["baseline_days"] == 2


def test_anomalies_leave_tax_and_purchases_alone():
    # a month's tax is booked on its first day: 40 against a baseline of 1 is not an anomaly
    daily = daily_frame(("aws", "global", "Tax", days_before(DAY, [1, 1, 1, 1, 1, 40])))
    daily["usage"] = False
    assert anomalies(daily, DAY, RULES) == []
    daily["usage"] = True  # the same figures as usage would be one
    assert [a["service"] for a in anomalies(daily, DAY, RULES)] == ["Tax"]


def test_anomalies_on_a_day_without_data_are_none():
    daily = daily_frame(("aws", "us-west-2", "EC2", days_before(DAY - timedelta(days=1), [10, 10, 10, 10, 10, 50])))
    assert anomalies(daily, DAY, RULES) == []
