"""Reading used CPU and memory from serving endpoints' ``/metrics`` (``include.cost.utilisation``), with the
HTTP reads answered in-process (a stand-in for ``httpx.get`` that, like serving, answers 401 without the
region's bearer token, which comes from its ``connections.serving`` connection)."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge, ProcessCollector, generate_latest

from include.catalogue import load_catalogue
from include.cost import utilisation
from include.errors import MetricsFormatError

CATALOGUE = load_catalogue()
TOKEN = "serving-token-for-the-cost-tests"
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

    def get(url: str, timeout: float, headers: dict[str, str]) -> httpx.Response:
        answer = answers[url.removesuffix("/metrics")]
        if isinstance(answer, Exception):
            raise answer
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(
                401, json={"detail": "missing Authorization header"}, request=httpx.Request("GET", url)
            )
        return httpx.Response(200, text=answer, request=httpx.Request("GET", url))

    monkeypatch.setattr(utilisation.httpx, "get", get)
    for region in CATALOGUE.regions:
        connection = {"conn_type": "generic", "password": TOKEN}
        monkeypatch.setenv(f"AIRFLOW_CONN_{region.connections.serving.upper()}", json.dumps(connection))


def test_reads_the_process_metrics_prometheus_client_exports(monkeypatch):
    answer_with(monkeypatch, {AWS: process_exposition()})
    found = utilisation.read_process_metrics(AWS + "/", TOKEN)
    assert set(found) == {"process_cpu_seconds_total", "process_resident_memory_bytes"}
    assert found["process_cpu_seconds_total"] > 0 and found["process_resident_memory_bytes"] > 0


def test_names_the_process_metric_that_is_missing(monkeypatch):
    answer_with(monkeypatch, {AWS: "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 2.5\n"})
    with pytest.raises(ValueError, match=rf"^{re.escape(AWS)}/metrics has no process_resident_memory_bytes$"):
        utilisation.read_process_metrics(AWS, TOKEN)


def test_an_answer_that_is_not_prometheus_text_is_refused_by_name(monkeypatch):
    answer_with(monkeypatch, {AWS: "<html><body>502 Bad Gateway</body></html>"})
    with pytest.raises(MetricsFormatError, match=rf"^{re.escape(AWS)}/metrics is not Prometheus text \(invalid"):
        utilisation.read_process_metrics(AWS, TOKEN)


def test_only_workloads_whose_endpoint_answers_get_a_figure(monkeypatch):
    answer_with(
        monkeypatch,
        {AWS: process_exposition(), GCP: "<html>maintenance</html>", AZURE: httpx.ConnectError("refused")},
    )
    used = utilisation.sample_workloads(CATALOGUE, window_seconds=0.01)
    assert list(used) == ["model-serving@aws-us-west-2"]
    figures = used["model-serving@aws-us-west-2"]
    assert figures["cpu_cores"] >= 0 and figures["memory_gib"] > 0


def test_the_token_comes_from_the_regions_serving_connection(monkeypatch):
    answer_with(monkeypatch, {AWS: process_exposition(), GCP: process_exposition(), AZURE: process_exposition()})
    monkeypatch.setenv("AIRFLOW_CONN_SERVING_GCP_EUROPE_WEST1", json.dumps({"conn_type": "generic", "password": "x"}))
    monkeypatch.delenv("AIRFLOW_CONN_SERVING_AZURE_EASTUS")
    assert utilisation.serving_token(CATALOGUE.region("aws-us-west-2")) == TOKEN
    used = utilisation.sample_workloads(CATALOGUE, window_seconds=0.01)
    assert list(used) == ["model-serving@aws-us-west-2"]  # a wrong token and no connection: 401, no figure
