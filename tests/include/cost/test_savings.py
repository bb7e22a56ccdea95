"""Spot candidates and right-sizing, on hand-made workloads whose expected figures are worked out in the comments."""

from __future__ import annotations

import math

import pytest

from include.catalogue.cost import UnitPrice, Workload
from include.cost.savings import parse_utilisation, right_sizing, round_up_to_step, savings_total, spot_candidates
from include.errors import CostDataError

approx = pytest.approx
PRICES = {"aws": UnitPrice(vcpu_hour=0.04, gib_hour=0.005), "gcp": UnitPrice(vcpu_hour=0.0316, gib_hour=0.0042)}
PROVIDERS = {"aws-us-west-2": "aws", "gcp-europe-west1": "gcp"}


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
