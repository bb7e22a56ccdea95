"""The GCP cost source: ``extract_gcp`` through the provider's BigQuery hook against a local BigQuery.

The local BigQuery is ``localdev.bigquery_standin``, a stand-in for the BigQuery REST API, because no
BigQuery emulator that runs here serves this schema: crucible-emulator 0.1.0a2 rejects query parameters,
ingestion-time partitioned tables and streaming inserts. The stand-in answers only the billing-export
query, so these tests check the extractor's calls, paging, parameters, row decoding and failure
handling through the real ``google-cloud-bigquery`` client, not BigQuery's SQL engine or partitions.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from include.catalogue import REPO_ROOT
from include.catalogue.cost import GcpCostSource
from include.clouds.billing.gcp import extract_gcp
from include.clouds.billing.schemas import GCP_SOURCE_SCHEMA
from include.errors import SchemaDrift, SourceUnavailable
from localdev.bigquery_standin import bigquery_schema, seed_billing_export
from localdev.processes import ProcessTable, free_port

pytestmark = pytest.mark.integration

PROJECT = "mlp-local"
EXPORT_TABLE = f"{PROJECT}.billing.gcp_billing_export_v1_0A1B2C_3D4E5F_6A7B8C"
FIRST_DAY, LAST_DAY = date(2026, 11, 1), date(2026, 11, 2)

# The export has columns the platform does not read; the seeded table has two of them.
EXPORT_SCHEMA = GCP_SOURCE_SCHEMA.append(pa.field("export_time", pa.timestamp("us", tz="UTC"))).append(
    pa.field("invoice", pa.struct([("month", pa.string())]))
)


def utc(day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A moment of November 2026, UTC."""
    return datetime(2026, 11, day, hour, minute, second, micro, tzinfo=UTC)


def line(sku: str, start: datetime, end: datetime, cost: float, **columns) -> dict:
    """One export row: compute in us-central1 unless ``columns`` say otherwise."""
    return {
        "billing_account_id": "0A1B2C-3D4E5F-6A7B8C",
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": sku, "description": f"SKU {sku}"},
        "usage_start_time": start,
        "usage_end_time": end,
        "project": {"id": "ml-serving", "name": "ML Serving"},
        "labels": [],
        "location": {"location": "us-central1", "country": "US", "region": "us-central1", "zone": "us-central1-a"},
        "resource": {"name": None, "global_name": None},
        "cost": cost,
        "cost_at_list": cost,
        "currency": "USD",
        "currency_conversion_rate": 1.0,
        "usage": {"amount": 3600.0, "unit": "seconds", "amount_in_pricing_units": 1.0, "pricing_unit": "hour"},
        "credits": [],
        "cost_type": "regular",
        "export_time": end,
        "invoice": {"month": "202611"},
        **columns,
    }


OCT_31_LATE = line("A-OUT-BEFORE", datetime(2026, 10, 31, 23, 30, tzinfo=UTC), utc(1, 0), 9.0)
NOV_1_MIDNIGHT = line("B-FIRST", utc(1, 0), utc(1, 1), 0.25)
NOV_1_LATE = line(
    "C-CREDITS",
    utc(1, 23, 30),
    utc(2, 0, 0),
    12.5,
    cost_at_list=14.0,
    labels=[{"key": "team", "value": "ml"}, {"key": "env", "value": "prod"}],
    resource={"name": "projects/ml-serving/instances/gpu-1", "global_name": "//compute.googleapis.com/gpu-1"},
    credits=[
        {
            "name": "Sustained Usage Discount",
            "amount": -1.25,
            "full_name": None,
            "id": "",
            "type": "SUSTAINED_USAGE_DISCOUNT",
        },
        {
            "name": "Free trial",
            "amount": -0.5,
            "full_name": "Free trial credit",
            "id": "promo-42",
            "type": "PROMOTION",
        },
    ],
)
NOV_2_TAX = line(
    "D-TAX",
    utc(2, 10),
    utc(2, 11),
    0.75,
    service={"id": "TAX", "description": "Tax"},
    location={"location": None, "country": None, "region": None, "zone": None},
    usage={"amount": None, "unit": None, "amount_in_pricing_units": None, "pricing_unit": None},
    cost_type="tax",
)
NOV_2_LATE = line("E-LAST", utc(2, 23, 30), utc(2, 23, 59, 59, 999999), 3.125, currency="EUR")
NOV_2_NOON_EUR = line(
    "F-EUR", utc(2, 12), utc(2, 13), 4.5, currency="EUR", currency_conversion_rate=0.9215, cost_at_list=5.0
)
NOV_3_MIDNIGHT = line("G-OUT-AFTER", utc(3, 0), utc(3, 1), 7.0)
SEEDED = [OCT_31_LATE, NOV_1_MIDNIGHT, NOV_1_LATE, NOV_2_TAX, NOV_2_LATE, NOV_2_NOON_EUR, NOV_3_MIDNIGHT]
IN_WINDOW = [NOV_1_MIDNIGHT, NOV_1_LATE, NOV_2_TAX, NOV_2_LATE, NOV_2_NOON_EUR]


def source(table: str = EXPORT_TABLE) -> GcpCostSource:
    return GcpCostSource(connection="gcp_billing", table=table, location="US")


def as_source_rows(rows: list[dict]) -> list[dict]:
    """What the extractor returns for ``rows``: the platform's columns, in SKU order like ``extracted_rows``."""
    return sorted(
        ({name: row[name] for name in GCP_SOURCE_SCHEMA.names} for row in rows), key=lambda row: row["sku"]["id"]
    )


def extracted_rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda row: row["sku"]["id"])


def control(endpoint: str, method: str, path: str, body: dict | None = None) -> dict:
    """Call one of the stand-in's ``/_stand_in`` knobs."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{endpoint}/_stand_in{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def bigquery_endpoint(tmp_path_factory) -> Iterator[str]:
    """The stand-in on a free loopback port, started as a user starts it, stopped after the module."""
    state = tmp_path_factory.mktemp("bigquery-standin")
    processes = ProcessTable(state / "run", state / "logs")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "localdev.bigquery_standin", "--host", "127.0.0.1", "--port", str(port), "--quiet"]
    try:
        processes.start("bigquery-standin", argv, env=dict(os.environ), cwd=REPO_ROOT)
        processes.wait_until(
            ["bigquery-standin"], lambda: control(endpoint, "GET", "/health")["ok"], 20, what="BigQuery stand-in"
        )
        seed_billing_export(endpoint, EXPORT_TABLE, pa.Table.from_pylist(SEEDED, schema=EXPORT_SCHEMA))
        yield endpoint
    finally:
        processes.stop_all()


@pytest.fixture(autouse=True)
def gcp_billing_connection(bigquery_endpoint, monkeypatch) -> Iterator[str]:
    """``AIRFLOW_CONN_GCP_BILLING`` pointed at the stand-in; faults and the request log cleared after each test."""
    extra = {"project": PROJECT, "is_anonymous": True, "api_endpoint": bigquery_endpoint}
    monkeypatch.setenv("AIRFLOW_CONN_GCP_BILLING", json.dumps({"conn_type": "google_cloud_platform", "extra": extra}))
    control(bigquery_endpoint, "DELETE", "/requests")
    yield bigquery_endpoint
    control(bigquery_endpoint, "DELETE", "/faults")


def requests_to(endpoint: str, method: str, path_part: str) -> list[dict]:
    return [
        request
        for request in control(endpoint, "GET", "/requests")["requests"]
        if request["method"] == method and path_part in request["path"]
    ]


def test_returns_the_window_only_with_nested_values_and_credits_intact():
    table = extract_gcp(source(), FIRST_DAY, LAST_DAY)

    assert table.schema == GCP_SOURCE_SCHEMA
    assert extracted_rows(table) == as_source_rows(IN_WINDOW)
    credits_row = next(row for row in table.to_pylist() if row["sku"]["id"] == "C-CREDITS")
    assert credits_row["credits"] == NOV_1_LATE["credits"]
    assert credits_row["labels"] == [{"key": "team", "value": "ml"}, {"key": "env", "value": "prod"}]
    assert credits_row["usage_start_time"] == datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
    last = next(row for row in table.to_pylist() if row["sku"]["id"] == "E-LAST")
    assert last["usage_end_time"] == datetime(2026, 11, 2, 23, 59, 59, 999999, tzinfo=UTC)


def test_sends_one_parameterised_query_with_the_partition_bound(gcp_billing_connection):
    extract_gcp(source(), FIRST_DAY, LAST_DAY)

    [job] = requests_to(gcp_billing_connection, "POST", f"/projects/{PROJECT}/jobs")
    query = job["body"]["configuration"]["query"]
    assert query["useLegacySql"] is False
    assert query["queryParameters"] == [
        {"name": "first_day", "parameterType": {"type": "DATE"}, "parameterValue": {"value": "2026-11-01"}},
        {"name": "last_day", "parameterType": {"type": "DATE"}, "parameterValue": {"value": "2026-11-02"}},
    ]
    sql = " ".join(query["query"].split())
    assert f"FROM `{EXPORT_TABLE}`" in sql
    assert "WHERE _PARTITIONTIME >= TIMESTAMP(DATE_SUB(@first_day, INTERVAL 1 DAY))" in sql
    assert sql.endswith("AND DATE(usage_start_time) BETWEEN @first_day AND @last_day")
    assert "2026" not in sql
    assert "export_time" not in sql and "invoice" not in sql


def test_small_pages_give_every_row(gcp_billing_connection):
    table = extract_gcp(source(), FIRST_DAY, LAST_DAY, page_size=2)

    assert extracted_rows(table) == as_source_rows(IN_WINDOW)
    pages = requests_to(gcp_billing_connection, "GET", "/queries/")
    assert [page["query"].get("pageToken") for page in pages] == [None, "2", "4"]
    assert {page["query"]["maxResults"] for page in pages} == {"2"}


def test_an_empty_window_gives_an_empty_table_with_the_schema():
    table = extract_gcp(source(), date(2026, 12, 1), date(2026, 12, 1))

    assert table.num_rows == 0
    assert table.schema == GCP_SOURCE_SCHEMA


def test_a_table_without_ingestion_partitions_is_read_without_partitiontime(gcp_billing_connection):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=gcp_billing_connection),
    )
    table_id = f"{PROJECT}.billing.unpartitioned_copy"
    client.create_table(bigquery.Table(table_id, schema=bigquery_schema(GCP_SOURCE_SCHEMA)))
    rows = json.loads(json.dumps(as_source_rows([NOV_1_LATE, NOV_3_MIDNIGHT]), default=str))
    assert client.insert_rows_json(table_id, rows) == []

    table = extract_gcp(source(table_id), FIRST_DAY, LAST_DAY)

    assert extracted_rows(table) == as_source_rows([NOV_1_LATE])
    [job] = requests_to(gcp_billing_connection, "POST", "/jobs")
    assert "_PARTITIONTIME" not in job["body"]["configuration"]["query"]["query"]


def test_a_missing_column_is_schema_drift_before_any_query(gcp_billing_connection):
    drifted = pa.schema([field for field in GCP_SOURCE_SCHEMA if field.name != "cost_at_list"])
    table_id = f"{PROJECT}.billing.gcp_billing_export_v1_DRIFTED"
    seed_billing_export(gcp_billing_connection, table_id, pa.Table.from_pylist([NOV_1_LATE], schema=drifted))
    control(gcp_billing_connection, "DELETE", "/requests")

    with pytest.raises(SchemaDrift, match=f"{table_id} is missing column\\(s\\) cost_at_list$"):
        extract_gcp(source(table_id), FIRST_DAY, LAST_DAY)
    assert requests_to(gcp_billing_connection, "POST", "/jobs") == []


def test_the_standin_answers_a_missing_column_as_bigquery_does(gcp_billing_connection):
    from google.api_core.client_options import ClientOptions
    from google.api_core.exceptions import BadRequest
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=gcp_billing_connection),
    )
    job_config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("first_day", "DATE", FIRST_DAY),
            bigquery.ScalarQueryParameter("last_day", "DATE", LAST_DAY),
        ]
    )
    sql = (
        f"SELECT cost, no_such_column FROM `{EXPORT_TABLE}`\n"
        "WHERE DATE(usage_start_time) BETWEEN @first_day AND @last_day"
    )
    with pytest.raises(BadRequest, match=r"Unrecognized name: no_such_column at \[1:14\]"):
        client.query(sql, job_config=job_config).result()
    with pytest.raises(BadRequest, match="only serves the query"):
        client.query(f"SELECT SUM(cost) FROM `{EXPORT_TABLE}`").result()


@pytest.mark.parametrize(("status", "path_part"), [(500, "/queries/"), (429, "/jobs"), (503, "/tables/")])
def test_a_transient_error_is_retried_and_succeeds(gcp_billing_connection, status, path_part):
    control(gcp_billing_connection, "POST", "/faults", {"status": status, "count": 1, "path_contains": path_part})

    table = extract_gcp(source(), FIRST_DAY, LAST_DAY, retry_deadline=10)

    assert extracted_rows(table) == as_source_rows(IN_WINDOW)
    assert control(gcp_billing_connection, "GET", "/faults")["fault"]["count"] == 0


def test_a_persistently_failing_server_is_source_unavailable_within_the_retry_budget(gcp_billing_connection):
    control(gcp_billing_connection, "POST", "/faults", {"status": 500, "count": 10_000})

    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match=f"gcp billing export {EXPORT_TABLE} kept failing"):
        extract_gcp(source(), FIRST_DAY, LAST_DAY, retry_deadline=1.5)
    assert time.monotonic() - started < 6
    assert len(requests_to(gcp_billing_connection, "GET", "/tables/")) >= 2  # retried before giving up


def test_the_hook_uses_api_endpoint_only_when_the_connection_has_one(gcp_billing_connection, monkeypatch):
    from include.clouds.hooks.bigquery import BigQueryEndpointHook

    local = BigQueryEndpointHook(gcp_conn_id="gcp_billing", use_legacy_sql=False)
    assert local.get_client(project_id=PROJECT)._connection.API_BASE_URL == gcp_billing_connection

    extra = {"project": PROJECT, "is_anonymous": True}
    monkeypatch.setenv("AIRFLOW_CONN_GCP_PLAIN", json.dumps({"conn_type": "google_cloud_platform", "extra": extra}))
    plain = BigQueryEndpointHook(gcp_conn_id="gcp_plain", use_legacy_sql=False)
    assert plain.get_client_options().api_endpoint is None
    assert plain.get_client(project_id=PROJECT)._connection.API_BASE_URL == "https://bigquery.googleapis.com"
