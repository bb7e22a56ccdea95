"""Reading used CPU and memory from serving endpoints' ``/metrics`` (``include.cost.utilisation``), with the
HTTP reads answered in-process."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge, ProcessCollector, generate_latest

from include.catalogue import load_catalogue
from include.cost import utilisation
from include.errors import MetricsFormatError

CATALOGUE = load_catalogue()
AWS, GCP, AZURE = (
    CATALOGUE.region(name).serving_endpoint for name in ("aws-us-west-2", "gcp-europe-west1", "azure-eastus")
)


def process_exposition() -> str:
    """What the serving service exports: labelled ``mlp_*`` series and the process's standard metrics."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    capacity = Gauge("mlp_serving_capacity", "capacity", ["region", "model", "version"], registry=registry)
    capacity.labels("aws-us-west-2", "m", "1").set(32)
    return generate_latest(registry).decode()


def answer_with(monkeypatch, answers: dict[str, str | Exception]) -> None:
    """Make ``httpx.get`` answer each endpoint's ``/metrics`` with its text, or raise its exception."""

    def get(url: str, timeout: float) -> httpx.Response:
        answer = answers[url.removesuffix("/metrics")]
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(200, text=answer, request=httpx.Request("GET", url))

    monkeypatch.setattr(utilisation.httpx, "get", get)


def test_reads_the_process_metrics_prometheus_client_exports(monkeypatch):
    answer_with(monkeypatch, {AWS: process_exposition()})
    found = utilisation.read_process_metrics(AWS + "/")
    assert set(found) == {"process_cpu_seconds_total", "process_resident_memory_bytes"}
    assert found["process_cpu_seconds_total"] > 0 and found["process_resident_memory_bytes"] > 0


def test_names_the_process_metric_that_is_missing(monkeypatch):
    answer_with(monkeypatch, {AWS: "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 2.5\n"})
    with pytest.raises(ValueError, match=rf"^{re.escape(AWS)}/metrics has no process_resident_memory_bytes$"):
        utilisation.read_process_metrics(AWS)


def test_an_answer_that_is_not_prometheus_text_is_refused_by_name(monkeypatch):
    answer_with(monkeypatch, {AWS: "<html><body>502 Bad Gateway</body></html>"})
    with pytest.raises(MetricsFormatError, match=rf"^{re.escape(AWS)}/metrics is not Prometheus text \(invalid"):
        utilisation.read_process_metrics(AWS)


def test_only_workloads_whose_endpoint_answers_get_a_figure(monkeypatch):
    answer_with(
        monkeypatch,
        {AWS: process_exposition(), GCP: "<html>maintenance</html>", AZURE: httpx.ConnectError("refused")},
    )
    used = utilisation.sample_workloads(CATALOGUE, window_seconds=0.01)
    assert list(used) == ["model-serving@aws-us-west-2"]
    figures = used["model-serving@aws-us-west-2"]
    assert figures["cpu_cores"] >= 0 and figures["memory_gib"] > 0
