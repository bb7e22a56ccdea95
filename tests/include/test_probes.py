"""The quorum verdict, the Prometheus parsing, the utilisation reading and the bearer token of the health probes
(the probes themselves run against real serving processes in tests/integration/test_failover_chaos.py; here
httpx's MockTransport answers)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from include.catalogue import load_catalogue
from include.errors import MetricsFormatError
from include.health.probes import (
    ProbeResult,
    decide,
    metric_samples,
    probe_endpoint,
    serving_tokens,
    utilisation_from_metrics,
)


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
    assert utilisation_from_metrics("# TYPE other gauge\nother 1\n") is None
    assert utilisation_from_metrics("") is None


def test_samples_keep_their_labels():
    text = (
        "# TYPE mlp_predict_latency_seconds histogram\n"
        'mlp_predict_latency_seconds_bucket{region="r",model="m",version="7",le="0.1"} 2\n'
        'mlp_predict_latency_seconds_bucket{region="r",model="m",version="7",le="+Inf"} 3\n'
        'mlp_predict_latency_seconds_count{region="r",model="m",version="7"} 3\n'
        'mlp_predict_latency_seconds_sum{region="r",model="m",version="7"} 0.25\n'
        "# TYPE process_cpu_seconds_total counter\n"
        "process_cpu_seconds_total 1.5\n"
    )
    samples = metric_samples(text)
    assert [(s.name, s.value) for s in samples][-3:] == [
        ("mlp_predict_latency_seconds_count", 3),
        ("mlp_predict_latency_seconds_sum", 0.25),
        ("process_cpu_seconds_total", 1.5),
    ]
    assert samples[0].labels == {"region": "r", "model": "m", "version": "7", "le": "0.1"}
    assert samples[1].labels["le"] == "+Inf"
    assert samples[-1].labels == {}


@pytest.mark.parametrize("text", ["nothing here", "<html><body>Bad gateway</body></html>", '{"detail": "Not Found"}'])
def test_text_that_is_not_prometheus_is_refused_by_name(text):
    with pytest.raises(MetricsFormatError, match=r"^http://r/metrics is not Prometheus text \(.+\); it begins "):
        metric_samples(text, "http://r/metrics")
    with pytest.raises(MetricsFormatError, match="/metrics is not Prometheus text"):
        utilisation_from_metrics(text)


def probe_answering(metrics: httpx.Response, token: str | None = None, seen: dict | None = None) -> ProbeResult:
    """One probe of aws-us-west-2 whose /health and /ready answer 200 and whose /metrics answers ``metrics``;
    ``seen`` collects the Authorization header each path was sent with."""
    catalogue = load_catalogue()

    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen[request.url.path] = request.headers.get("Authorization")
        if request.url.path == "/metrics":
            return metrics
        return httpx.Response(200, json={"ready": True})

    async def probe() -> ProbeResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            return await probe_endpoint(client, catalogue, "probe-a", catalogue.region("aws-us-west-2"), token)

    return asyncio.run(probe())


def test_a_probe_reads_utilisation_from_labelled_metrics():
    labels = 'region="aws-us-west-2",model="m",version="1"'
    text = f"mlp_serving_inflight_requests{{{labels}}} 30.0\nmlp_serving_capacity{{{labels}}} 32.0\n"
    result = probe_answering(httpx.Response(200, text=text))
    assert result.outcome == "slow" and result.utilisation == 30 / 32
    assert result.detail == "utilisation 94% above 85%"


def test_a_probe_with_unreadable_metrics_is_judged_on_readiness_and_says_why():
    result = probe_answering(httpx.Response(200, text="<html>proxy error</html>"))
    assert result.outcome == "ok" and result.utilisation is None
    assert "utilisation unknown: /metrics is not Prometheus text (invalid metric name" in result.detail


def test_the_token_goes_to_metrics_alone():
    seen: dict = {}
    labels = 'region="aws-us-west-2",model="m"'
    text = f"mlp_serving_inflight_requests{{{labels}}} 1.0\nmlp_serving_capacity{{{labels}}} 32.0\n"
    result = probe_answering(httpx.Response(200, text=text), token="probe-token-0123456789", seen=seen)
    assert result.outcome == "ok" and result.utilisation == 1 / 32
    assert seen == {"/health": None, "/ready": None, "/metrics": "Bearer probe-token-0123456789"}


def test_metrics_refused_leaves_utilisation_unknown_and_says_why():
    result = probe_answering(httpx.Response(401, json={"detail": "missing Authorization header"}))
    assert result.outcome == "ok" and result.utilisation is None
    assert result.detail.endswith("; utilisation unknown: /metrics answered 401")


def test_tokens_come_from_each_regions_serving_connection(monkeypatch):
    catalogue = load_catalogue()
    aws, gcp, azure = catalogue.regions
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{aws.connections.serving.upper()}", json.dumps({"conn_type": "generic", "password": "t1"})
    )
    monkeypatch.delenv(f"AIRFLOW_CONN_{gcp.connections.serving.upper()}", raising=False)
    without = azure.model_copy(update={"connections": azure.connections.model_copy(update={"serving": None})})
    tokens = asyncio.run(serving_tokens([aws, gcp, without]))
    assert tokens == {aws.name: "t1", gcp.name: None, azure.name: None}  # gcp's connection is not defined
