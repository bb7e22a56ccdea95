"""The normalisers from each cloud's source table to FOCUS 1.2, on hand-checked rows."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from include.clouds.billing.schemas import AWS_SOURCE_SCHEMA, AZURE_SOURCE_SCHEMA, GCP_SOURCE_SCHEMA, conform
from include.cost.focus import (
    FOCUS_SCHEMA,
    ExchangeRates,
    normalise_aws,
    normalise_azure,
    normalise_gcp,
    reconcile,
    rows_by_day,
    source_days,
    source_totals,
)
from include.errors import CurrencyRateMissing, ReconciliationError, SchemaDrift

RATES = ExchangeRates("USD", {"EUR": 1.10})
NOV_1, NOV_2 = date(2026, 11, 1), date(2026, 11, 2)


def aws_rows(*rows: dict) -> pa.Table:
    base = {
        "day": NOV_1,
        "service": "Amazon Simple Storage Service",
        "region": "us-west-2",
        "unblended_cost": 10.0,
        "amortized_cost": 10.0,
        "currency": "USD",
        "usage_quantity": 100.0,
        "usage_unit": "GB-Mo",
        "estimated": False,
        "account_id": "123456789012",
    }
    return pa.Table.from_pylist([base | row for row in rows], schema=AWS_SOURCE_SCHEMA)


def gcp_row(**changes) -> dict:
    start = datetime(2026, 11, 1, 23, tzinfo=UTC)
    row = {
        "billing_account_id": "01ABCD-23EF45-6789AB",
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": "BB77-5FDA-69D9", "description": "N2 Instance Core running in Belgium"},
        "usage_start_time": start,
        "usage_end_time": start.replace(hour=23, minute=59),
        "project": {"id": "mlp-prod", "name": "ML platform"},
        "labels": [{"key": "workload", "value": "model-serving"}, {"key": "env", "value": "prod"}],
        "location": {"location": "europe-west1", "country": "BE", "region": "europe-west1", "zone": "europe-west1-b"},
        "resource": {"name": "gke-node-1", "global_name": "//compute.googleapis.com/projects/mlp-prod/gke-node-1"},
        "cost": 20.0,
        "cost_at_list": 25.0,
        "currency": "EUR",
        "currency_conversion_rate": 0.93,
        "usage": {"amount": 7200.0, "unit": "seconds", "amount_in_pricing_units": 2.0, "pricing_unit": "hour"},
        "credits": [
            {
                "name": "Sustained usage discount",
                "amount": -3.0,
                "full_name": "",
                "id": "",
                "type": "SUSTAINED_USAGE_DISCOUNT",
            },
            {"name": "Promotion", "amount": -1.0, "full_name": "", "id": "p1", "type": "PROMOTION"},
        ],
        "cost_type": "regular",
    }
    return row | changes


def azure_rows(*rows: dict) -> pa.Table:
    base = {
        "usage_date": NOV_1,
        "service_name": "Virtual Machines",
        "resource_location": "eastus",
        "currency": "USD",
        "actual_cost": 30.0,
        "amortized_cost": 12.0,
        "subscription_id": "8f6b6b5e-3c1a-4d3e-9c39-2f1f0c7a5d10",
    }
    return pa.Table.from_pylist([base | row for row in rows], schema=AZURE_SOURCE_SCHEMA)


def test_aws_costs_categories_and_regions():
    source = aws_rows(
        {},
        {"service": "Tax", "region": "NoRegion", "unblended_cost": 1.5, "amortized_cost": 1.5, "usage_unit": "N/A"},
        {"service": "AWS Data Transfer", "unblended_cost": -2.0, "amortized_cost": -2.0, "estimated": True},
        {"service": "Amazon Quantum Ledger", "unblended_cost": 0.0, "amortized_cost": 0.0},
    )
    result = normalise_aws(source, RATES)
    rows = result.table.to_pylist()
    assert result.table.schema == FOCUS_SCHEMA
    assert [r["BilledCost"] for r in rows] == [10.0, 1.5, -2.0, 0.0]
    assert [r["ChargeCategory"] for r in rows] == ["Usage", "Tax", "Credit", "Usage"]  # negative usage: a credit
    assert [r["RegionId"] for r in rows] == ["us-west-2", None, "us-west-2", "us-west-2"]
    assert [r["ServiceCategory"] for r in rows] == ["Storage", "Other", "Networking", "Other"]
    assert rows[0]["ChargePeriodStart"] == datetime(2026, 11, 1, tzinfo=UTC)
    assert rows[0]["ChargePeriodEnd"] == datetime(2026, 11, 2, tzinfo=UTC)
    assert rows[0]["PricingUnit"] == "GB-Mo" and rows[1]["PricingUnit"] is None  # "N/A" is no unit
    assert rows[2]["x_Estimated"] is True
    assert all(r["ListCost"] == r["BilledCost"] and r["x_ListCostKnown"] is False for r in rows)
    assert any("negative cost kept as ChargeCategory Credit" in note for note in result.notes)
    assert any("Amazon Quantum Ledger" in note for note in result.notes)  # unmapped service, noted


def test_gcp_credits_are_netted_and_converted():
    source = pa.Table.from_pylist([gcp_row()], schema=GCP_SOURCE_SCHEMA)
    row = normalise_gcp(source, RATES).table.to_pylist()[0]
    # cost 20 EUR, credits -3 and -1 -> 16 EUR billed; at 1.10 USD per EUR -> 17.60 USD
    assert row["BilledCost"] == pytest.approx(17.60)
    assert row["EffectiveCost"] == pytest.approx(17.60)
    assert row["x_Credits"] == pytest.approx(-4.40)
    assert row["ContractedCost"] == pytest.approx(22.0)  # cost before credits
    assert row["ListCost"] == pytest.approx(27.5)  # cost_at_list 25 EUR
    assert row["x_SourceBilledCost"] == pytest.approx(16.0) and row["x_SourceCurrency"] == "EUR"
    assert row["x_ExchangeRate"] == 1.10 and row["BillingCurrency"] == "USD"
    assert row["Tags"] == [("workload", "model-serving"), ("env", "prod")]
    assert (row["RegionId"], row["AvailabilityZone"], row["SubAccountId"]) == (
        "europe-west1",
        "europe-west1-b",
        "mlp-prod",
    )
    assert (row["PricingQuantity"], row["PricingUnit"], row["ConsumedQuantity"]) == (2.0, "hour", 7200.0)
    assert row["PricingCategory"] == "Standard" and row["ChargeCategory"] == "Usage"


def test_gcp_spot_tax_unknown_types_and_missing_list_price():
    source = pa.Table.from_pylist(
        [
            gcp_row(sku={"id": "s", "description": "Spot Preemptible N2 Instance Core running in Belgium"}),
            gcp_row(cost_type="tax", credits=[], cost_at_list=None, labels=[]),
            gcp_row(cost_type="brand_new_type", credits=[]),
            gcp_row(location={"location": None, "country": None, "region": None, "zone": None}),
        ],
        schema=GCP_SOURCE_SCHEMA,
    )
    result = normalise_gcp(source, RATES)
    rows = result.table.to_pylist()
    assert rows[0]["PricingCategory"] == "Dynamic"
    assert (rows[1]["ChargeCategory"], rows[1]["PricingCategory"]) == ("Tax", None)
    assert rows[1]["ListCost"] == pytest.approx(22.0) and rows[1]["x_ListCostKnown"] is False  # cost stands in
    assert rows[1]["Tags"] == []
    assert rows[2]["ChargeCategory"] == "Adjustment"
    assert any("brand_new_type" in note for note in result.notes)
    assert rows[3]["RegionId"] is None  # a global charge


def test_azure_actual_and_amortised():
    source = azure_rows(
        {}, {"resource_location": "Unassigned", "service_name": "Azure DNS", "actual_cost": 0.5, "amortized_cost": 0.5}
    )
    rows = normalise_azure(source, RATES).table.to_pylist()
    assert (rows[0]["BilledCost"], rows[0]["EffectiveCost"]) == (30.0, 12.0)  # a reservation bought, then spread
    assert rows[0]["ProviderName"] == "Microsoft Azure" and rows[0]["ServiceCategory"] == "Compute"
    assert rows[1]["RegionId"] is None
    assert rows[0]["SubAccountId"] == "8f6b6b5e-3c1a-4d3e-9c39-2f1f0c7a5d10"


def test_a_currency_without_a_rate_is_refused_by_name():
    source = azure_rows({"currency": "GBP"})
    with pytest.raises(CurrencyRateMissing, match="azure billing data is in GBP"):
        normalise_azure(source, RATES)


def test_an_empty_or_nan_cost_is_refused():
    with pytest.raises(ValueError, match="1 row\\(s\\) whose unblended_cost is empty or not a number"):
        normalise_aws(aws_rows({"unblended_cost": float("nan")}), RATES)


def test_an_empty_source_gives_an_empty_focus_table():
    result = normalise_gcp(GCP_SOURCE_SCHEMA.empty_table(), RATES)
    assert result.table.num_rows == 0 and result.table.schema == FOCUS_SCHEMA


def test_schema_drift_names_the_missing_column_and_casts_compatible_types():
    table = aws_rows({}).drop_columns(["amortized_cost"])
    with pytest.raises(SchemaDrift, match="aws billing source is missing column\\(s\\) amortized_cost"):
        conform("aws", table)
    widened = aws_rows({}).set_column(4, "amortized_cost", pa.array(["9.5"]))  # a number sent as text
    assert conform("aws", widened)["amortized_cost"].to_pylist() == [9.5]
    garbled = aws_rows({}).set_column(4, "amortized_cost", pa.array(["n/a"]))
    with pytest.raises(SchemaDrift, match="amortized_cost"):
        conform("aws", garbled)


def test_totals_reconcile_per_day_and_currency():
    source = pa.Table.from_pylist(
        [gcp_row(), gcp_row(usage_start_time=datetime(2026, 11, 2, 0, tzinfo=UTC), cost=5.0, credits=[])],
        schema=GCP_SOURCE_SCHEMA,
    )
    focus = normalise_gcp(source, RATES).table
    assert reconcile("gcp", source, focus) == {(NOV_1, "EUR"): pytest.approx(16.0), (NOV_2, "EUR"): 5.0}
    assert source_totals("gcp", source) == reconcile("gcp", source, focus)
    tampered = focus.set_column(
        FOCUS_SCHEMA.get_field_index("x_SourceBilledCost"), "x_SourceBilledCost", pa.array([16.0, 4.0])
    )
    with pytest.raises(
        ReconciliationError, match="gcp 2026-11-02: normalised total 4.000000 EUR differs from the source's 5.000000"
    ):
        reconcile("gcp", source, tampered)


def test_rows_are_split_by_utc_day():
    source = pa.Table.from_pylist(
        [
            gcp_row(usage_start_time=datetime(2026, 11, 1, 23, 30, tzinfo=UTC)),
            gcp_row(usage_start_time=datetime(2026, 11, 2, 0, 0, tzinfo=UTC)),
            gcp_row(usage_start_time=datetime(2026, 11, 1, 0, 0, tzinfo=UTC)),
        ],
        schema=GCP_SOURCE_SCHEMA,
    )
    split = rows_by_day(source, source_days("gcp", source))
    assert {day: table.num_rows for day, table in split.items()} == {NOV_1: 2, NOV_2: 1}


def test_aws_savings_plan_fees_are_recurring_purchases():
    source = aws_rows({"service": "Savings Plans for AWS Compute usage", "region": "global"})
    row = normalise_aws(source, RATES).table.to_pylist()[0]
    assert (row["ChargeCategory"], row["ChargeFrequency"], row["ServiceCategory"]) == (
        "Purchase",
        "Recurring",
        "Compute",
    )
