"""The cost analysis rules, on small hand-made rows whose expected figures are worked out in the comments."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest

from include.catalogue import AnomalyRules, Budget, UnitPrice, Workload
from include.cost.analysis import (
    DAILY_COLUMNS,
    anomalies,
    budget_status,
    daily_costs,
    month_forecast,
    parse_utilisation,
    right_sizing,
    round_up_to_step,
    savings_total,
    spot_candidates,
    top_movers,
)
from include.cost.focus import FOCUS_SCHEMA
from include.errors import CostDataError

approx = pytest.approx
PRICES = {"aws": UnitPrice(vcpu_hour=0.04, gib_hour=0.005), "gcp": UnitPrice(vcpu_hour=0.0316, gib_hour=0.0042)}
PROVIDERS = {"aws-us-west-2": "aws", "gcp-europe-west1": "gcp"}


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


# --- spot_candidates --------------------------------------------------------------------------------------------


def workload(name: str, region: str = "aws-us-west-2", **fields) -> Workload:
    defaults = {"replicas": 1, "cpu_request": 1, "memory_request_gib": 2}
    return Workload(name=name, region=region, **(defaults | fields))


def test_spot_candidates_need_stateless_interruptible_and_on_demand():
    workloads = [
        workload("batch", replicas=2, cpu_request=4, memory_request_gib=16, stateless=True, interruptible=True),
        workload("scorer", "gcp-europe-west1", cpu_request=2, memory_request_gib=8, stateless=True, interruptible=True),
        workload("stateful", stateless=False, interruptible=True),
        workload("fragile", stateless=True, interruptible=False),
        workload("already-spot", stateless=True, interruptible=True, capacity="spot"),
    ]
    found = spot_candidates(workloads, PRICES, 0.6, PROVIDERS)
    assert [(c["workload"], c["provider"]) for c in found] == [("batch", "aws"), ("scorer", "gcp")]
    batch, scorer = found
    # batch: 2 x (4 x 0.04 + 16 x 0.005) x 730 = 2 x 0.24 x 730 = 350.40; saving x 0.6 = 210.24
    assert batch["monthly_cost"] == approx(350.40)
    assert batch["monthly_saving"] == approx(210.24)
    # scorer: 1 x (2 x 0.0316 + 8 x 0.0042) x 730 = 0.0968 x 730 = 70.664; saving x 0.6 = 42.3984
    assert scorer["monthly_cost"] == approx(70.664)
    assert scorer["monthly_saving"] == approx(42.3984)


def test_spot_candidates_refuse_a_region_without_provider():
    with pytest.raises(ValueError, match="region 'azure-eastus' is not in the catalogue"):
        spot_candidates([workload("job", "azure-eastus", stateless=True, interruptible=True)], PRICES, 0.6, PROVIDERS)


# --- right_sizing -----------------------------------------------------------------------------------------------


def test_round_up_to_step_ignores_float_noise():
    assert round_up_to_step(0.1 + 0.2, 0.1) == approx(0.3)  # 0.30000000000000004 is 3 steps, not 4
    assert round_up_to_step(1.01, 0.25) == 1.25
    assert round_up_to_step(1.0, 0.25) == 1.0


def test_right_sizing_rounds_floors_and_needs_a_meaningful_cut():
    workloads = [
        workload("serving", replicas=3, cpu_request=1, memory_request_gib=2),
        workload("idle", cpu_request=2, memory_request_gib=4),
        workload("tight", replicas=2, cpu_request=1.2, memory_request_gib=4),
        workload("boundary", cpu_request=1.25, memory_request_gib=2),
        workload("backfill", replicas=2, cpu_request=4, memory_request_gib=8, capacity="spot"),
        workload("unmeasured"),
    ]
    used = {
        ("serving", "aws-us-west-2"): (0.3, 0.9),
        ("idle", "aws-us-west-2"): (0.01, 0.05),
        ("tight", "aws-us-west-2"): (0.8, 2.9),
        ("boundary", "aws-us-west-2"): (0.8, 1.2),
        ("backfill", "aws-us-west-2"): (1.0, 3.0),
    }
    rows = {row["workload"]: row for row in right_sizing(workloads, used, PRICES, PROVIDERS, spot_discount=0.6)}

    # serving: CPU 0.3 x 1.15 = 0.345 -> up to 0.5 (<= 1 x 0.8); memory 0.9 x 1.15 = 1.035 -> 1.25 (<= 1.6)
    # saving 3 x (0.5 x 0.04 + 0.75 x 0.005) x 730 = 3 x 0.02375 x 730 = 52.0125
    serving = rows["serving"]
    assert (serving["status"], serving["cpu_recommended"], serving["memory_recommended_gib"]) == ("resize", 0.5, 1.25)
    assert serving["monthly_saving"] == approx(52.0125)

    # idle: CPU 0.0115 -> 0.25 (the floor); memory 0.0575 -> 0.25, raised to the 0.5 GiB floor
    # saving 1 x (1.75 x 0.04 + 3.5 x 0.005) x 730 = 0.0875 x 730 = 63.875
    idle = rows["idle"]
    assert (idle["cpu_recommended"], idle["memory_recommended_gib"]) == (0.25, 0.5)
    assert idle["monthly_saving"] == approx(63.875)

    # tight: CPU 0.92 -> 1.0 > 1.2 x 0.8 = 0.96 (only 17 % lower); memory 3.335 -> 3.5 > 4 x 0.8 = 3.2: keep both
    tight = rows["tight"]
    assert (tight["status"], tight["cpu_recommended"], tight["memory_recommended_gib"]) == ("keep", 1.2, 4.0)
    assert tight["monthly_saving"] == 0

    # boundary: CPU 0.92 -> 1.0 = 1.25 x 0.8 exactly (20 % counts); memory 1.38 -> 1.5 <= 1.6
    # saving 1 x (0.25 x 0.04 + 0.5 x 0.005) x 730 = 0.0125 x 730 = 9.125
    boundary = rows["boundary"]
    assert (boundary["status"], boundary["cpu_recommended"], boundary["memory_recommended_gib"]) == ("resize", 1.0, 1.5)
    assert boundary["monthly_saving"] == approx(9.125)

    # backfill, on spot: CPU 1.15 -> 1.25, memory 3.45 -> 3.5; on-demand saving
    # 2 x (2.75 x 0.04 + 4.5 x 0.005) x 730 = 2 x 0.1325 x 730 = 193.45, at spot prices x (1 - 0.6) = 77.38
    assert rows["backfill"]["monthly_saving"] == approx(77.38)

    # no utilisation: reported as no data, not as zero use
    assert rows["unmeasured"]["status"] == "no_data" and "monthly_saving" not in rows["unmeasured"]

    order = [row["workload"] for row in right_sizing(workloads, used, PRICES, PROVIDERS, spot_discount=0.6)]
    assert order == ["backfill", "idle", "serving", "boundary", "tight", "unmeasured"]


def test_parse_utilisation_reads_the_xcom_form_and_pairs():
    parsed = parse_utilisation(
        {"serving@aws-us-west-2": {"cpu_cores": 0.3, "memory_gib": 0.9, "window_seconds": 10}, ("idle", "r"): (1, 2)}
    )
    assert parsed == {("serving", "aws-us-west-2"): (0.3, 0.9), ("idle", "r"): (1, 2)}
    assert parsed["serving", "aws-us-west-2"].memory_gib == 0.9
    with pytest.raises(CostDataError, match="is not \\(workload, region\\)"):
        parse_utilisation({"serving": {"cpu_cores": 1, "memory_gib": 1}})
    with pytest.raises(CostDataError, match="lacks cpu_cores or memory_gib"):
        parse_utilisation({"serving@r": {"cpu": 1}})


def test_right_sizing_refuses_unusable_utilisation():
    with pytest.raises(CostDataError, match="utilisation"):
        right_sizing(
            [workload("job")], {("job", "aws-us-west-2"): (math.nan, 1.0)}, PRICES, PROVIDERS, spot_discount=0.6
        )


def test_savings_total_counts_the_overlap_once():
    spot = [{"workload": "batch", "region": "r", "monthly_saving": 210.24}]
    sizing = [
        {"workload": "batch", "region": "r", "status": "resize", "monthly_saving": 50.0},
        {"workload": "serving", "region": "r", "status": "resize", "monthly_saving": 20.0},
        {"workload": "idle", "region": "r", "status": "no_data"},
    ]
    # overlap: batch's right-sizing saving x 0.6 = 30; total 210.24 + 70 - 30 = 250.24
    assert savings_total(spot, sizing, 0.6) == approx(
        {"spot_monthly": 210.24, "right_sizing_monthly": 70.0, "overlap_monthly": 30.0, "monthly": 250.24}
    )


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
