"""The platform exporter over a real SQLite state database seeded through the stores, Route 53 and the cost store
on moto, scraped over HTTP on loopback; and every metric the rules and the dashboard read is one it or serving
exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from include.catalogue import load_catalogue
from include.cost.report import build_report
from include.cost.store import report_key
from include.failover.machine import State, moved
from include.failover.store import FailoverStore
from include.monitoring.exporter import PlatformCollector, open_collector
from include.replication.status import StatusStore
from include.serving.metrics import ServingMetrics
from include.serving.state import ServingState
from include.state.engine import state_engine
from include.state.migrate import upgrade_state_db
from tests.include.cost.frames import focus_frame, focus_row
from tests.monitoring.helpers import PROMETHEUS_SERIES, alert_rules, dashboard_expressions, metric_names

pytestmark = pytest.mark.integration

AWS, GCP, AZURE = "aws-us-west-2", "gcp-europe-west1", "azure-eastus"
SHA = "ab" * 32
Samples = dict[tuple[str, frozenset], float]


def scrape(port: int) -> Samples:
    """Every sample of ``/metrics`` on 127.0.0.1:``port``, by (name, labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def state_db(tmp_path, monkeypatch, local_clouds):
    """An empty, migrated SQLite state database behind the catalogue's state connection (``mlp_state``)."""
    path = tmp_path / "state.db"
    monkeypatch.setenv("AIRFLOW_CONN_MLP_STATE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    upgrade_state_db(f"sqlite:///{path}")
    return state_engine("mlp_state")


def seed_replication(engine, now: datetime) -> None:
    """fraud 3: verified in gcp 120 s after its event, still pending in azure an hour on. fraud 2: corrupt in
    azure. churn 7, its newest version: only a gcp row, so azure is missing."""
    status = StatusStore(engine)
    event = now - timedelta(hours=1)
    status.claim("fraud", "3", GCP, AWS, SHA, "run-1", event_time=event)
    status.claim("fraud", "3", AZURE, AWS, SHA, "run-1", event_time=event)
    status.record("fraud", "3", GCP, AWS, "verified")
    with engine.begin() as conn:  # verified 120 s after the event, as a run an hour ago would have recorded it
        conn.exec_driver_sql(
            "UPDATE mlp_replication_status SET verified_at = ? WHERE region = ?",
            ((event + timedelta(seconds=120)).strftime("%Y-%m-%d %H:%M:%S.%f"), GCP),
        )
    status.record("fraud", "2", AZURE, AWS, "corrupt", event_time=now - timedelta(days=2), message="sha256 differs")
    status.record("churn", "7", GCP, AWS, "copying", event_time=now - timedelta(minutes=1))


def seed_failover(engine, limit: int) -> None:
    """gcp failed over (the breaker's ledger holds ``limit`` of its episodes this hour); azure UNHEALTHY since,
    its failover not started: the breaker blocks it. aws stays HEALTHY."""
    store = FailoverStore(engine)
    records = store.load([AWS, GCP, AZURE])
    for episode in range(limit):
        store.start_failover(GCP, float(episode), "health-watch", "graceful", limit)
    now = time.time()
    unhealthy, to_unhealthy = moved(records[GCP], State.UNHEALTHY, "probes failed", {}, now)
    store.save([unhealthy], [to_unhealthy])
    records = store.load([AWS, GCP, AZURE])
    failed_over, to_failover = moved(records[GCP], State.FAILOVER, "graceful failover", {}, now)
    azure, to_azure = moved(records[AZURE], State.UNHEALTHY, "probes failed", {}, now)
    store.save([failed_over, azure], [to_failover, to_azure])


def seed_cost_report(catalogue, store, day: date) -> dict:
    """A real report for ``day``: 14 days of EC2 at 100, then 400 on ``day`` (an anomaly)."""
    rows = [
        focus_row(
            datetime.combine(day - timedelta(days=offset), datetime.min.time(), UTC),
            "aws",
            "us-west-2",
            "EC2",
            400.0 if offset == 0 else 100.0,
        )
        for offset in range(15)
    ]
    report = build_report(focus_frame(rows), day, catalogue.cost, catalogue)
    store.put_bytes(report_key(catalogue.cost.prefix, day, "json"), json.dumps(report, default=str).encode())
    return report


@contextmanager
def serving(collector: PlatformCollector) -> Generator[int]:
    """``collector`` behind prometheus_client's HTTP server on a free loopback port; yields the port."""
    registry = CollectorRegistry()
    registry.register(collector)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def exporter(state_db) -> Iterator[int]:
    """The exporter on a free loopback port, over the state database, moto's Route 53 and the cost store."""
    with serving(open_collector(load_catalogue())) as port:
        yield port


@pytest.fixture
def seeded(state_db, exporter):
    """Seed every source; restore azure's DNS weight afterwards (moto is shared by the session)."""
    from include.clouds.objectstore import store_for
    from include.clouds.route53 import Route53Traffic

    catalogue = load_catalogue()
    now = datetime.now(UTC)
    seed_replication(state_db, now)
    seed_failover(state_db, catalogue.failover.max_failovers_per_hour)
    report = seed_cost_report(catalogue, store_for(catalogue.cost_store_region), now.date())
    traffic = Route53Traffic(catalogue)
    traffic.apply({AZURE: 0}, {AWS, GCP})
    yield report
    traffic.apply({AZURE: 100}, {AWS, GCP, AZURE})


def test_replication_metrics(exporter, seeded):
    samples = scrape(exporter)
    assert value(samples, "mlp_replication_rpo_seconds") == 15 * 60
    assert value(samples, "mlp_replication_lag_seconds", model="fraud", version="3", region=GCP) == pytest.approx(120)
    age = value(samples, "mlp_replication_unverified_age_seconds", model="fraud", version="3", region=AZURE)
    assert 3600 <= age < 3700
    assert value(samples, "mlp_replica_state", model="fraud", version="2", region=AZURE, state="corrupt") == 1
    assert value(samples, "mlp_replica_state", model="churn", version="7", region=AZURE, state="missing") == 1
    missing_at_source = {"model": "churn", "version": "7", "region": AWS, "state": "missing"}
    assert ("mlp_replica_state", frozenset(missing_at_source.items())) not in samples, "the source holds it"
    assert value(samples, "mlp_replication_status_rows", state="pending") == 1
    assert value(samples, "mlp_replication_status_rows", state="verified") == 1


def test_failover_metrics(exporter, seeded):
    samples = scrape(exporter)
    assert value(samples, "mlp_region_health_state", region=GCP, state="FAILOVER") == 1
    assert value(samples, "mlp_region_health_state", region=GCP, state="HEALTHY") == 0
    assert value(samples, "mlp_region_health_state", region=AZURE, state="UNHEALTHY") == 1
    assert value(samples, "mlp_region_health_state_since_timestamp_seconds", region=AZURE) == pytest.approx(
        time.time(), abs=60
    )
    assert value(samples, "mlp_failover_moves_total", region=GCP) == 1
    assert value(samples, "mlp_failover_moves_total", region=AWS) == 0
    assert value(samples, "mlp_region_record_writes_total", region=GCP) == 2
    assert value(samples, "mlp_failover_blocked_by_breaker", region=AZURE) == 1
    assert value(samples, "mlp_failover_blocked_by_breaker", region=AWS) == 0
    assert value(samples, "mlp_failover_breaker_starts_last_hour") == 3
    assert value(samples, "mlp_failover_breaker_limit") == 3


def test_a_failover_started_is_not_blocked(exporter, seeded, state_db):
    """Once azure's episode is in the ledger (an operator overrode the breaker), nothing is blocked."""
    store = FailoverStore(state_db)
    azure = store.load([AZURE])[AZURE]
    store.start_failover(AZURE, azure.since, "operator", "immediate", 3, override=True)
    samples = scrape(exporter)
    assert value(samples, "mlp_failover_blocked_by_breaker", region=AZURE) == 0
    assert value(samples, "mlp_failover_breaker_starts_last_hour") == 4


def test_dns_and_cost_metrics(exporter, seeded):
    samples = scrape(exporter)
    assert value(samples, "mlp_dns_weight", region=AZURE) == 0
    assert value(samples, "mlp_dns_weight", region=AWS) == 100
    today = datetime.now(UTC).date()
    midnight = datetime.combine(today, datetime.min.time(), UTC).timestamp()
    assert value(samples, "mlp_cost_report_day_timestamp_seconds") == midnight
    assert value(samples, "mlp_cost_report_anomalies", provider="aws") == len(seeded["anomalies"]) == 1
    assert value(samples, "mlp_cost_report_anomalies", provider="gcp") == 0
    assert value(samples, "mlp_cost_day_effective_cost", provider="aws", currency="USD") == 400
    budget = next(b for b in seeded["budgets"]["items"] if b["region"] == "us-west-2")
    ratio = value(samples, "mlp_cost_budget_spend_ratio", provider="aws", region="us-west-2", basis="actual")
    assert ratio == pytest.approx(budget["percent"] / 100)
    assert value(samples, "mlp_cost_budget_spend_ratio", provider="aws", region="all", basis="actual") > 0
    for source in ("state", "dns", "cost"):
        assert value(samples, "mlp_exporter_source_up", source=source) == 1


def test_a_source_that_fails_leaves_the_others(state_db, seeded, monkeypatch):
    """Route 53 unreachable (its connection points at a closed loopback port): dns is down, state still served."""
    from include.clouds.route53 import Route53Traffic

    catalogue = load_catalogue()
    closed = {
        "conn_type": "aws",
        "extra": {"endpoint_url": "http://127.0.0.1:9", "config_kwargs": {"retries": {"max_attempts": 1}}},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{catalogue.dns.connection.upper()}", json.dumps(closed))
    with serving(PlatformCollector(catalogue, state_db, Route53Traffic(catalogue))) as port:
        samples = scrape(port)
    assert value(samples, "mlp_exporter_source_up", source="dns") == 0
    assert not any(name == "mlp_dns_weight" for name, _ in samples)
    assert value(samples, "mlp_exporter_source_up", source="state") == 1
    assert value(samples, "mlp_region_health_state", region=AZURE, state="UNHEALTHY") == 1
    assert value(samples, "mlp_exporter_source_up", source="cost") == 0, "no cost store given"


def serving_metric_names() -> set[str]:
    """The sample names of a serving app's ``/metrics`` (``include.serving.metrics``) after one request."""
    catalogue = load_catalogue()
    state = ServingState(catalogue, catalogue.region(AWS), "m", store=None, trusted=None)
    metrics = ServingMetrics(state, capacity=1)
    metrics.request_started()
    metrics.request_finished(0.01, failed=True, version="1")
    return {
        sample.name
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
    }


def test_every_metric_the_rules_and_dashboard_read_is_exported(exporter, seeded):
    exported = {name for name, _ in scrape(exporter)} | serving_metric_names() | PROMETHEUS_SERIES
    expressions = [rule["expr"] for rule in alert_rules()] + dashboard_expressions()
    for expression in expressions:
        unknown = metric_names(expression) - exported
        assert not unknown, f"{expression!r} reads {sorted(unknown)}, which nothing exports"


def test_the_command_serves_metrics_on_loopback(seeded):
    """``python -m include.monitoring --port 0`` in its own process, with the same connections."""
    process = subprocess.Popen(
        [sys.executable, "-m", "include.monitoring", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Serving the platform's metrics on http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        samples = scrape(port)
        assert value(samples, "mlp_region_health_state", region=AZURE, state="UNHEALTHY") == 1
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_bad_port_is_refused_naming_it():
    result = subprocess.run(
        [sys.executable, "-m", "include.monitoring", "--port", "http"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "the port must be a number from 0 to 65535, not 'http'" in result.stderr
