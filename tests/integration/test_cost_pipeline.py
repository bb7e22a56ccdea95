"""The daily cost pipeline end to end on the local clouds: generated billing in moto's Cost Explorer and the
BigQuery and Cost Management stand-ins, FOCUS partitions and reports in the primary region's S3 bucket (moto).

Each test has a catalogue of its own (cost prefix, BigQuery table), so partitions never mix between tests.
moto hands out queued Cost Explorer answers one per distinct request, and answers a request it has seen
before as it did then; so each test asks for windows no other test asks for, and queues one answer (the
whole generated period, of which the extractor keeps its window) per new request.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pyarrow.compute as pc
import pytest
import yaml

from include.catalogue import CATALOGUE_ENV, DEFAULT_CATALOGUE, load_catalogue
from include.clouds.objectstore import store_for
from include.cost.focus import source_totals
from include.cost.pipeline import build_daily_report, days_to_load, extract_window, normalise_window, window
from include.cost.store import partition_key, read_partition, report_days, report_key
from localdev.bigquery_standin import seed_billing_export
from localdev.billing import AWS_PAGE_SIZE, queue_cost_explorer_pages
from localdev.cost_management_standin import reset_stand_in, seed_cost_rows
from localdev.emulators import cost_management_tls_dir
from localdev.synthetic_billing import generate_billing
from tests.integration.conftest import WEBHOOK_CONN_ID
from tests.integration.helpers import parse_dag, task_states

pytestmark = pytest.mark.integration

END_DAY = date(2026, 11, 20)
PROVIDERS = ("aws", "gcp", "azure")


@pytest.fixture
def cost_catalogue(local_clouds, webhook, monkeypatch, tmp_path):
    """A catalogue of this test's own, with 12 days of generated billing (ending END_DAY) in every source."""
    tag = uuid.uuid4().hex[:8]
    data = yaml.safe_load(DEFAULT_CATALOGUE.read_text())
    data["cost"] |= {"prefix": f"cost-test-{tag}", "history_days": 10, "restatement_days": 2}
    data["cost"]["sources"]["gcp"]["table"] = f"mlp-local.billing_export.export_{tag}"
    data["cost"]["utilisation_window_seconds"] = 0.5
    data["cost"]["notify_connection"] = WEBHOOK_CONN_ID
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(CATALOGUE_ENV, str(path))
    catalogue = load_catalogue(path)
    billing = generate_billing(END_DAY, days=12)
    seed_billing_export(local_clouds.ports.bigquery_url, catalogue.cost.sources.gcp.table, billing.gcp)
    ca_bundle = cost_management_tls_dir(local_clouds.data_dir) / "cert.pem"
    reset_stand_in(local_clouds.ports.cost_management_url, ca_bundle)
    seed_cost_rows(local_clouds.ports.cost_management_url, billing.azure.drop_columns(["subscription_id"]), ca_bundle)
    return catalogue, billing


def _queue_aws(local_clouds, billing, times: int = 1) -> None:
    for _ in range(times):
        queue_cost_explorer_pages(local_clouds.ports.moto_url, billing.aws_pages(AWS_PAGE_SIZE))


def _day_totals(table, provider: str) -> dict[date, float]:
    return {day: round(total, 6) for (day, _), total in source_totals(provider, table).items()}


def test_pipeline_loads_reconciles_and_reports(local_clouds, cost_catalogue):
    catalogue, billing = cost_catalogue
    days = window(END_DAY, 10)
    assert days_to_load(catalogue, END_DAY, 2) == days  # nothing stored yet: the first run loads the history
    _queue_aws(local_clouds, billing)
    for provider in PROVIDERS:
        extracted = extract_window(catalogue, provider, days, "test-run")
        assert sorted(extracted["written"]) == [d.isoformat() for d in days], provider
        normalised = normalise_window(catalogue, provider, days, "test-run")
        assert all(figures["rows"] > 0 for figures in normalised["written"].values()), provider
    assert days_to_load(catalogue, END_DAY, 2) == window(END_DAY, 2)  # later runs re-pull the restatement window

    # Totals reconcile with the generated source data, computed from it here without the pipeline.
    store, prefix = store_for(catalogue.cost_store_region), catalogue.cost.prefix
    expected = {
        "aws": _day_totals(billing.aws_table(days[0], days[-1]), "aws"),
        "gcp": _day_totals(billing.gcp, "gcp"),
        "azure": _day_totals(billing.azure, "azure"),
    }
    for provider in PROVIDERS:
        for day in days:
            focus, info = read_partition(store, partition_key(prefix, "focus", day, provider))
            assert round(pc.sum(focus["x_SourceBilledCost"]).as_py(), 6) == pytest.approx(expected[provider][day])
            assert info["source_totals"] == {
                ("EUR" if provider == "gcp" else "USD"): pytest.approx(expected[provider][day])
            }
    eur = pc.equal(read_partition(store, partition_key(prefix, "focus", END_DAY, "gcp"))[0]["x_SourceCurrency"], "EUR")
    assert pc.all(eur).as_py()  # GCP bills in EUR; BilledCost is converted to USD at the catalogue's rate

    # The report on the planted anomaly's day finds it, and is stored as HTML and JSON.
    anomaly = billing.planted_anomaly
    report = build_daily_report(catalogue, anomaly.day, {}, ["a note from the run"])
    found = [(a["provider"], a["region"], a["service"]) for a in report["anomalies"]]
    assert (anomaly.provider, anomaly.region, anomaly.service) in found
    assert "a note from the run" in report["data_notes"]
    assert json.loads(store.get_bytes(report_key(prefix, anomaly.day, "json")))["day"] == anomaly.day.isoformat()
    html = store.get_bytes(report_key(prefix, anomaly.day, "html")).decode()
    assert "<svg" in html and anomaly.service in html
    assert report_days(store, prefix) == [anomaly.day]


def test_rerun_replaces_partitions_with_the_same_rows(local_clouds, cost_catalogue):
    catalogue, billing = cost_catalogue
    days = window(END_DAY - timedelta(days=3), 2)
    store, prefix = store_for(catalogue.cost_store_region), catalogue.cost.prefix
    tables = []
    _queue_aws(local_clouds, billing)  # one request: the rerun's is the same, and moto answers it the same
    for run in ("first", "second"):
        extract_window(catalogue, "aws", days, run)
        normalise_window(catalogue, "aws", days, run)
        tables.append([read_partition(store, partition_key(prefix, "focus", d, "aws"))[0] for d in days])
    assert all(first.equals(second) for first, second in zip(*tables, strict=True))


def test_an_empty_answer_keeps_what_was_extracted(local_clouds, cost_catalogue):
    catalogue, billing = cost_catalogue
    days = window(END_DAY - timedelta(days=6), 2)
    store, prefix = store_for(catalogue.cost_store_region), catalogue.cost.prefix
    _queue_aws(local_clouds, billing)
    extract_window(catalogue, "aws", days, "first")
    before = [read_partition(store, partition_key(prefix, "source", d, "aws"))[0] for d in days]
    # A new request and nothing queued: moto answers it with no results at all.
    earlier = days[0] - timedelta(days=1)
    later = extract_window(catalogue, "aws", [earlier, *days], "second")
    assert later["written"] == {earlier.isoformat(): {"rows": 0, "totals": {}}}  # never seen: written empty
    assert later["notes"] == [
        f"aws {earlier}: the source has no rows for this day",
        *(
            f"aws {d}: the source returned no rows; kept the {t.num_rows} extracted before"
            for d, t in zip(days, before, strict=True)
        ),
    ]
    after = [read_partition(store, partition_key(prefix, "source", d, "aws"))[0] for d in days]
    assert all(a.equals(b) for a, b in zip(before, after, strict=True))


def test_dag_first_run_then_a_backfill_of_two_days(airflow_db, local_clouds, cost_catalogue, webhook):
    """``dag.test()`` of the whole DAG for three consecutive days: the first loads the history, the next two
    re-pull their restatement window, as ``airflow backfill create`` would run them."""
    catalogue, billing = cost_catalogue
    _queue_aws(local_clouds, billing, times=3)
    store, prefix = store_for(catalogue.cost_store_region), catalogue.cost.prefix
    for run_day in (END_DAY - timedelta(days=2), END_DAY - timedelta(days=1), END_DAY):
        dag = parse_dag("cost_report.py", "cost_report")
        logical_date = datetime.combine(run_day + timedelta(days=1), datetime.min.time(), UTC).replace(hour=6)
        dag_run = dag.test(logical_date=logical_date)
        states = task_states(dag_run)
        assert dag_run.state == "success", states
        assert {states[f"extract[{i}]"] for i in range(3)} == {"success"}
    assert report_days(store, prefix) == [END_DAY, END_DAY - timedelta(days=1), END_DAY - timedelta(days=2)]
    first_loaded = window(END_DAY - timedelta(days=2), 10)
    for day in [*first_loaded, END_DAY - timedelta(days=1), END_DAY]:
        for provider in PROVIDERS:
            assert read_partition(store, partition_key(prefix, "focus", day, provider)) is not None, (day, provider)
    summary = json.loads(store.get_bytes(report_key(prefix, END_DAY, "json")))
    assert summary["headline"]["day_cost"] > 0
    assert all(alert["text"] for alert in webhook) and len(webhook) == sum(
        len(json.loads(store.get_bytes(report_key(prefix, d, "json")))["alerts"]) for d in report_days(store, prefix)
    )
