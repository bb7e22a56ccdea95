"""The daily report: figures from hand-made FOCUS rows, JSON round trip, and the HTML page drawn from it."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import jinja2
import pandas as pd
import pyarrow as pa
import pytest

from include.catalogue import parse_catalogue
from include.cost.focus import FOCUS_SCHEMA
from include.cost.report import build_report
from include.cost.report_html import money, render_html
from include.errors import CostDataError

DAY = date(2026, 11, 10)
EVIL = '<script>alert("x")</script> & co'
# as the DAG's utilisation task returns it through XCom (include.cost.utilisation)
UTILISATION = {"serving@aws-us-west-2": {"cpu_cores": 0.3, "memory_gib": 0.9, "window_seconds": 10.0}}


def catalogue_data() -> dict:
    """A two-region catalogue with the cost section these tests use."""
    return {
        "dns": {
            "zone": "mlp.example.internal",
            "record": "models.mlp.example.internal",
            "latency_record": "latency.models.mlp.example.internal",
            "failover_record": "failover.models.mlp.example.internal",
            "connection": "aws_route53",
        },
        "regions": [
            {
                "name": "aws-us-west-2",
                "provider": "aws",
                "cloud_region": "us-west-2",
                "primary": True,
                "bucket": "mlp-cost-test",
                "serving_endpoint": "http://127.0.0.1:8101",
                "dns_record": "us-west-2.models.mlp.example.internal",
                "connections": {"storage": "aws_us_west_2"},
            },
            {
                "name": "gcp-europe-west1",
                "provider": "gcp",
                "cloud_region": "europe-west1",
                "bucket": "mlp-models-europe-west1",
                "serving_endpoint": "http://127.0.0.1:8102",
                "dns_record": "europe-west1.models.mlp.example.internal",
                "latency_region": "eu-west-1",
                "connections": {"storage": "gcp_europe_west1"},
            },
        ],
        "cost": {
            "start_date": "2026-11-01",
            "sources": {
                "aws": {"connection": "aws_cost"},
                "gcp": {"connection": "gcp_billing", "table": "mlp-local.billing.gcp_billing_export_v1_X"},
            },
            "spot_discount": 0.6,
            "unit_prices": {"aws": {"vcpu_hour": 0.04, "gib_hour": 0.005}},
            "budgets": [{"provider": "aws", "region": "us-west-2", "monthly": 3000}],
            "budget_alert_percents": [50, 80, 100],
            "workloads": [
                {
                    "name": "batch",
                    "region": "aws-us-west-2",
                    "replicas": 2,
                    "cpu_request": 4,
                    "memory_request_gib": 16,
                    "stateless": True,
                    "interruptible": True,
                },
                {
                    "name": "serving",
                    "region": "aws-us-west-2",
                    "replicas": 3,
                    "cpu_request": 1,
                    "memory_request_gib": 2,
                    "stateless": True,
                },
            ],  # fmt: skip
        },
    }


@pytest.fixture
def catalogue():
    return parse_catalogue(catalogue_data())


def row(day: date, provider: str, region: str, service: str, billed: float, effective: float, hour: int = 0) -> dict:
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return {
        "BilledCost": billed,
        "EffectiveCost": effective,
        "BillingCurrency": "USD",
        "ChargePeriodStart": start,
        "ChargeCategory": "Usage",
        "ServiceName": service,
        "RegionId": region,
        "x_Provider": provider,
        "x_Estimated": provider == "aws" and day == DAY,
    }


def november_rows() -> list[dict]:
    """aws: EC2 every day (billed 100, effective 90); on the 10th a new SageMaker (40) and EVIL (2).
    gcp: Compute Engine in two 12-hour rows of 25 every day but the 5th (no gcp data that day)."""
    rows = []
    for offset in range(10):
        day = date(2026, 11, 1) + timedelta(days=offset)
        rows.append(row(day, "aws", "us-west-2", "EC2", 100.0, 90.0))
        if day != date(2026, 11, 5):
            rows += [row(day, "gcp", "europe-west1", "Compute Engine", 25.0, 25.0, hour) for hour in (0, 12)]
    rows.append(row(DAY, "aws", "us-west-2", "SageMaker", 40.0, 40.0))
    rows.append(row(DAY, "aws", "us-west-2", EVIL, 2.0, 2.0))
    return rows


def focus_frame(rows: list[dict]) -> pd.DataFrame:
    return pa.Table.from_pylist(rows, schema=FOCUS_SCHEMA).to_pandas()


@pytest.fixture
def report(catalogue) -> dict:
    return build_report(focus_frame(november_rows()), DAY, catalogue.cost, catalogue, UTILISATION)


def test_report_figures(report):
    assert report["day"] == "2026-11-10" and report["currency"] == "USD"
    headline = report["headline"]
    # the 10th, effective: aws 90 + 40 + 2 = 132, gcp 50: 182; billed: aws 100 + 40 + 2 = 142, gcp 50: 192
    assert (headline["day_cost"], headline["day_billed"]) == (182.0, 192.0)
    assert report["totals"]["by_provider"] == [
        {"provider": "aws", "billed": 142.0, "effective": 132.0},
        {"provider": "gcp", "billed": 50.0, "effective": 50.0},
    ]
    assert [s["service"] for s in report["totals"]["by_service"]] == ["EC2", "Compute Engine", "SageMaker", EVIL]
    # month to date, billed: aws 10 x 100 + 40 + 2 = 1042; gcp 9 days x 50 = 450 (no data on the 5th): 1492
    assert headline["month_to_date"] == 1492.0
    # forecast, 20 days left: aws run rate (7 x 100 + 42) / 7 = 106 -> 1042 + 106 x 20 = 3162;
    # gcp known days of Nov 4-10 are 6 (not the 5th): 300 / 6 = 50 -> 450 + 50 x 20 = 1450; total 4612
    assert headline["forecast"] == pytest.approx(4612.0)
    [budget] = report["budgets"]["items"]
    # the us-west-2 budget of 3000: 1042 (34.7 %) and forecast 3162 (105.4 %): forecast past 100
    assert budget["forecast"] == pytest.approx(3162.0)
    assert (budget["alert"]["threshold"], budget["alert"]["crossed_by"]) == (100, "forecast")
    assert headline["worst_budget"]["forecast_percent"] == pytest.approx(3162 / 3000 * 100)
    assert headline["budgets_forecast_over"] == 1
    # SageMaker is new at 40: both signals, expected 0; EVIL at 2 is under the 5.00 minimum
    [anomaly] = report["anomalies"]
    assert (anomaly["service"], anomaly["signals"], anomaly["excess"]) == (
        "SageMaker",
        ["day_over_day", "baseline"],
        40,
    )
    assert [alert["kind"] for alert in report["alerts"]] == ["budget", "cost_anomaly"]
    # savings: batch to spot 2 x (4 x 0.04 + 16 x 0.005) x 730 x 0.6 = 210.24; serving right-sized 52.0125
    assert report["savings"]["totals"]["monthly"] == pytest.approx(210.24 + 52.0125)
    assert report["movers"]["day_over_day"][0]["service"] == "SageMaker"


def test_report_series_and_notes(report):
    series = report["series"]
    assert len(series["days"]) == 90 and series["days"][0] == "2026-08-13" and series["days"][-1] == "2026-11-10"
    aws, gcp = series["by_provider"]
    assert aws["values"][-11] is None  # Oct 31: no data is null, not zero
    assert aws["values"][-10:] == [90.0] * 9 + [132.0]
    assert gcp["values"][-6] is None and gcp["values"][-7] == 50.0  # no gcp data on the 5th
    assert [(r["provider"], r["region"]) for r in series["by_region"]] == [
        ("aws", "us-west-2"),
        ("gcp", "europe-west1"),
    ]
    assert [(m["day"], m["service"]) for m in series["anomaly_marks"]] == [("2026-11-10", "SageMaker")]
    assert report["data_notes"] == [
        "No gcp data for 2026-11-05: shown as gaps, not zero.",
        "aws figures for 2026-11-10 are estimated by the source and may be restated.",
        "Right-sizing: no utilisation for batch in aws-us-west-2; not analysed.",
    ]


def test_report_round_trips_through_json(report):
    text = json.dumps(report, allow_nan=False)  # no NaN or infinity anywhere
    assert json.loads(text) == report
    assert list(report) == [
        "generated_at", "day", "currency", "focus_version", "cost_basis", "headline", "totals", "month_to_date",
        "series", "movers", "savings", "anomalies", "budgets", "alerts", "data_notes",
    ]  # fmt: skip


def test_html_has_the_headline_numbers_charts_and_escapes_text(report):
    page = render_html(report)
    for figure in ("$182.00", "$1,492.00", "$4,612.00", "$262.25"):  # day, month to date, forecast, savings
        assert figure in page
    assert page.count("<svg") >= 4  # the daily chart, sparklines, top services, budget bars
    assert 'class="anomaly"' in page and 'class="forecast"' in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co" in page  # autoescaped by the templates
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']""", page)  # self-contained: loads nothing
    assert "No gcp data for 2026-11-05" in page


def test_a_day_without_data_has_no_figure_not_zero(catalogue):
    rows = [r for r in november_rows() if r["ChargePeriodStart"].date() < DAY]
    report = build_report(focus_frame(rows), DAY, catalogue.cost, catalogue, None)
    assert report["headline"]["day_cost"] is None
    assert report["totals"]["providers_missing"] == ["aws", "gcp"]
    assert "No aws data for 2026-11-10: its figures for the day are missing, not zero." in report["data_notes"]
    assert report["anomalies"] == []
    page = render_html(report)
    assert "n/a" in page and "no data from aws, gcp" in page


def test_report_of_no_rows_at_all(catalogue):
    report = build_report(focus_frame([]), DAY, catalogue.cost, catalogue, None)
    assert (report["headline"]["day_cost"], report["headline"]["month_to_date"]) == (None, 0.0)
    assert report["headline"]["forecast"] is None  # no run rate from no data
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert "No cost data in the period." in render_html(report)


def test_report_refuses_rows_in_another_currency(catalogue):
    rows = november_rows()
    for r in rows:
        r["BillingCurrency"] = "EUR"
    with pytest.raises(CostDataError, match="in EUR, the reporting currency is USD"):
        build_report(focus_frame(rows), DAY, catalogue.cost, catalogue, None)


def test_money_format():
    assert (money(1234.5, "USD"), money(-3, "EUR"), money(7, "CHF"), money(None, "USD")) == (
        "$1,234.50", "-€3.00", "7.00 CHF", "n/a")  # fmt: skip


def test_a_report_missing_a_figure_fails_to_render_naming_it(report):
    """The templates are strict: a report without a field the page shows is an error, not a blank."""
    del report["headline"]["forecast"]
    with pytest.raises(jinja2.UndefinedError, match="forecast"):
        render_html(report)
