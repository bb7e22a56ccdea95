"""The quorum verdict and the utilisation reading of the health probes (the probes themselves run against
real serving processes in tests/integration/test_failover_chaos.py)."""

from __future__ import annotations

from include.health.probes import ProbeResult, decide, utilisation_from_metrics


def probes(*outcomes: str) -> list[ProbeResult]:
    return [ProbeResult(f"probe-{i}", "r", outcome, f"{outcome} detail") for i, outcome in enumerate(outcomes)]


def test_one_failing_vantage_point_is_outvoted():
    verdict = decide("r", probes("failed", "ok", "ok"), quorum=2)
    assert verdict.verdict == "ok"
    assert verdict.reasons == ["probe-0: failed detail (outvoted: below quorum 2)"]


def test_a_quorum_of_failures_fails_the_region():
    verdict = decide("r", probes("failed", "failed", "ok"), quorum=2)
    assert verdict.verdict == "failed" and verdict.reasons[0] == "2 of 3 vantage points failed (quorum 2)"


def test_slow_and_failed_together_degrade():
    assert decide("r", probes("failed", "slow", "ok"), quorum=2).verdict == "degraded"
    assert decide("r", probes("slow", "slow", "slow"), quorum=2).verdict == "degraded"


def test_cluster_problems_degrade_a_region_whose_endpoints_answer():
    verdict = decide("r", probes("ok", "ok", "ok"), quorum=2, cluster={"problems": ["1 of 3 nodes not ready"]})
    assert verdict.verdict == "degraded" and verdict.reasons == ["cluster: 1 of 3 nodes not ready"]
    assert verdict.evidence()["cluster"] == {"problems": ["1 of 3 nodes not ready"]}


def test_utilisation_is_inflight_over_capacity():
    text = (
        '# TYPE mlp_serving_inflight_requests gauge\nmlp_serving_inflight_requests{region="r"} 24\n'
        'mlp_serving_capacity{region="r"} 32\n'
    )
    assert utilisation_from_metrics(text) == 0.75
    assert utilisation_from_metrics("mlp_serving_capacity 0\nmlp_serving_inflight_requests 1") is None
    assert utilisation_from_metrics("nothing here") is None
