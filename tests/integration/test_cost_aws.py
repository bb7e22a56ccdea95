"""The Cost Explorer extractor against moto over loopback, through the Airflow connection, pages included.

moto answers ``GetCostAndUsage`` from a queue of results (``POST /moto-api/static/ce/cost-and-usage-results``),
one per distinct request, in order; it does not look at the request's dates, so these tests queue exactly the
pages the extractor will ask for and check what it made of them.
"""

from __future__ import annotations

from datetime import date

import pytest

from include.catalogue import load_catalogue
from include.clouds.billing.aws import extract_aws
from include.clouds.billing.schemas import AWS_SOURCE_SCHEMA
from include.errors import SchemaDrift
from localdev.billing import queue_cost_explorer_pages


def _group(service: str, region: str, unblended: str, amortized: str, usage: str = "1") -> dict:
    return {
        "Keys": [service, region],
        "Metrics": {
            "UnblendedCost": {"Amount": unblended, "Unit": "USD"},
            "AmortizedCost": {"Amount": amortized, "Unit": "USD"},
            "UsageQuantity": {"Amount": usage, "Unit": "N/A"},
        },
    }


def _day(start: str, end: str, groups: list[dict], estimated: bool = False) -> dict:
    return {"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Groups": groups, "Estimated": estimated}


def _queue(local_clouds, *results: dict) -> None:
    queue_cost_explorer_pages(local_clouds.ports.moto_url, list(results))


@pytest.fixture
def source():
    return load_catalogue().cost.sources.aws


def test_pages_are_followed_and_flattened(local_clouds, source):
    _queue(
        local_clouds,
        {
            "ResultsByTime": [
                _day(
                    "2026-11-01",
                    "2026-11-02",
                    [_group("Amazon Simple Storage Service", "us-west-2", "12.5", "12.5", "300")],
                ),
                _day(
                    "2026-11-02",
                    "2026-11-03",
                    [_group("Amazon Elastic Compute Cloud - Compute", "us-west-2", "80", "64")],
                ),
            ],
            "NextPageToken": "page-2",
        },
        {
            "ResultsByTime": [
                _day("2026-11-02", "2026-11-03", [_group("Amazon Route 53", "global", "0.5", "0.5")], estimated=True),
                _day("2026-10-31", "2026-11-01", [_group("Amazon Route 53", "global", "9", "9")]),  # outside: dropped
            ]
        },
    )
    table = extract_aws(source, date(2026, 11, 1), date(2026, 11, 2))
    assert table.schema == AWS_SOURCE_SCHEMA
    rows = table.to_pylist()
    assert [(r["day"], r["service"], r["unblended_cost"], r["amortized_cost"]) for r in rows] == [
        (date(2026, 11, 1), "Amazon Simple Storage Service", 12.5, 12.5),
        (date(2026, 11, 2), "Amazon Elastic Compute Cloud - Compute", 80.0, 64.0),
        (date(2026, 11, 2), "Amazon Route 53", 0.5, 0.5),
    ]
    assert rows[0]["usage_quantity"] == 300.0 and rows[2]["estimated"] is True
    assert {r["account_id"] for r in rows} == {"123456789012"}  # moto's account, from STS through the hook


def test_an_empty_answer_is_an_empty_table(local_clouds, source):
    _queue(local_clouds, {"ResultsByTime": [_day("2026-11-05", "2026-11-06", [])]})
    table = extract_aws(source, date(2026, 11, 5), date(2026, 11, 5))
    assert table.num_rows == 0 and table.schema == AWS_SOURCE_SCHEMA


def test_a_group_without_a_metric_is_schema_drift(local_clouds, source):
    group = _group("Amazon SageMaker", "us-west-2", "3", "3")
    del group["Metrics"]["AmortizedCost"]
    _queue(local_clouds, {"ResultsByTime": [_day("2026-11-07", "2026-11-08", [group])]})
    with pytest.raises(
        SchemaDrift, match="expected \\[SERVICE, REGION\\] and UnblendedCost, AmortizedCost, UsageQuantity"
    ):
        extract_aws(source, date(2026, 11, 7), date(2026, 11, 7))


def test_an_unreachable_cost_explorer_is_source_unavailable(monkeypatch, source):
    import json

    from include.errors import SourceUnavailable
    from localdev.processes import free_port

    dead = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {
            "endpoint_url": f"http://127.0.0.1:{free_port()}",  # nothing listens here
            "region_name": "us-east-1",
            "config_kwargs": {"retries": {"mode": "standard", "max_attempts": 2}, "connect_timeout": 1},
        },
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{source.connection.upper()}", json.dumps(dead))
    with pytest.raises(SourceUnavailable, match="unreachable"):
        extract_aws(source, date(2026, 11, 1), date(2026, 11, 1))
