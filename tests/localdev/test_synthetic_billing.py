"""The generated billing data: shape, schemas, coverage, scale, the planted anomaly, Cost Explorer paging."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from include.clouds.billing.aws import results_to_rows
from include.clouds.billing.schemas import (
    AWS_SOURCE_SCHEMA,
    AZURE_SOURCE_SCHEMA,
    GCP_SOURCE_SCHEMA,
    conform,
    unknown_columns,
)
from localdev.synthetic_billing import (
    AZURE_SUBSCRIPTION_ID,
    TAX_RATE,
    PlantedAnomaly,
    gcp_export_rows,
    gcp_min_rows_per_hour,
    generate_billing,
)

END = date(2026, 11, 30)  # 90 days: 2026-09-02 .. 2026-11-30, three months


@pytest.fixture(scope="module")
def billing():
    return generate_billing(END, days=90, seed=7)


@pytest.fixture(scope="module")
def aws(billing):
    return billing.aws_table().to_pandas()


@pytest.fixture(scope="module")
def gcp(billing):
    """The GCP table flattened to the columns the checks read, with each row's credit total."""
    table = billing.gcp
    credits = table["credits"].combine_chunks()
    amounts = pc.struct_field(pc.list_flatten(credits), "amount").to_numpy()
    parents = pc.list_parent_indices(credits).to_numpy()
    frame = pa.table(
        {
            "start": table["usage_start_time"],
            "end": table["usage_end_time"],
            "service": pc.struct_field(table["service"], "description"),
            "sku": pc.struct_field(table["sku"], "description"),
            "region": pc.struct_field(table["location"], "region"),
            "location": pc.struct_field(table["location"], "location"),
            "zone": pc.struct_field(table["location"], "zone"),
            "project": pc.struct_field(table["project"], "id"),
            "resource": pc.struct_field(table["resource"], "name"),
            "cost": table["cost"],
            "cost_at_list": table["cost_at_list"],
            "rate": table["currency_conversion_rate"],
            "currency": table["currency"],
            "cost_type": table["cost_type"],
            "amount": pc.struct_field(table["usage"], "amount"),
            "unit": pc.struct_field(table["usage"], "unit"),
            "pricing_amount": pc.struct_field(table["usage"], "amount_in_pricing_units"),
            "pricing_unit": pc.struct_field(table["usage"], "pricing_unit"),
        }
    ).to_pandas()
    frame["credits"] = np.bincount(parents, weights=amounts, minlength=len(frame))
    frame["credit_count"] = np.bincount(parents, minlength=len(frame))
    frame["day"] = frame["start"].dt.date
    return frame


def _window(billing) -> set[date]:
    return {billing.first_day + timedelta(days=i) for i in range(90)}


def _per_30_days(frame, day_column: str, value: str) -> dict[str, float]:
    """Each calendar month's total, scaled to 30 days, for months the window covers 14 days or more of."""
    month = frame[day_column].astype(str).str[:7]
    days = frame.groupby(month)[day_column].nunique()
    totals = frame.groupby(month)[value].sum()
    return {m: totals[m] / days[m] * 30 for m in totals.index if days[m] >= 14}


# ---------------------------------------------------------------------------------------------------------------
# Determinism, schemas, coverage


def test_the_same_seed_gives_the_same_billing(billing):
    again = generate_billing(END, days=90, seed=7)
    assert again.aws_results == billing.aws_results
    assert again.gcp.equals(billing.gcp) and again.azure.equals(billing.azure)
    assert again.planted_anomaly == billing.planted_anomaly
    other = generate_billing(END, days=90, seed=8)
    assert other.aws_results != billing.aws_results
    assert not other.gcp.equals(billing.gcp) and not other.azure.equals(billing.azure)


def test_tables_are_exactly_the_source_schemas(billing):
    assert billing.gcp.schema == GCP_SOURCE_SCHEMA
    assert billing.azure.schema == AZURE_SOURCE_SCHEMA
    assert billing.aws_table().schema == AWS_SOURCE_SCHEMA
    for provider, table in (("gcp", billing.gcp), ("azure", billing.azure), ("aws", billing.aws_table())):
        assert unknown_columns(provider, table) == []
        assert conform(provider, table).equals(table)


def test_every_day_of_the_window_is_there_for_every_cloud_and_nothing_else(billing, aws, gcp):
    window = _window(billing)
    assert billing.first_day == date(2026, 9, 2) and billing.last_day == END
    assert set(aws["day"]) == window
    periods = [r["TimePeriod"] for r in billing.aws_results]
    assert [date.fromisoformat(p["Start"]) for p in periods] == sorted(window)
    assert all(date.fromisoformat(p["End"]) - date.fromisoformat(p["Start"]) == timedelta(days=1) for p in periods)
    assert set(billing.azure["usage_date"].to_pylist()) == window
    assert set(gcp["day"]) == window
    assert gcp["start"].min() == datetime(2026, 9, 2, tzinfo=UTC)
    assert gcp["end"].max() == datetime(2026, 12, 1, tzinfo=UTC)
    # Every hour of the window has its rows.
    regular = gcp[gcp["cost_type"] == "regular"]
    assert regular["start"].nunique() == 90 * 24
    assert set(regular.groupby("start").size()) == {24}


def test_two_currencies(billing, aws, gcp):
    azure = set(billing.azure["currency"].to_pylist())
    assert set(aws["currency"]) == azure == {"USD"} and set(gcp["currency"]) == {"EUR"}


def test_the_window_crosses_month_ends(billing):
    assert {d.strftime("%Y-%m") for d in _window(billing)} == {"2026-09", "2026-10", "2026-11"}


# ---------------------------------------------------------------------------------------------------------------
# Scale: config/regions.yaml's budgets


def test_monthly_totals_are_at_the_stated_scale(aws, gcp, billing):
    us_west_2 = _per_30_days(aws[aws["region"] == "us-west-2"], "day", "unblended_cost")
    everything = _per_30_days(aws, "day", "unblended_cost")
    assert all(4400 <= v <= 5400 for v in us_west_2.values()), us_west_2  # about $5k
    assert all(5300 <= v <= 6500 for v in everything.values()), everything  # plus global charges and tax

    regular = gcp[(gcp["cost_type"] == "regular") & (gcp["region"] == "europe-west1")].assign(
        net=lambda f: f["cost"] + f["credits"]
    )
    europe_west1 = _per_30_days(regular, "day", "net")
    assert all(2900 <= v <= 3700 for v in europe_west1.values()), europe_west1  # about EUR 3.3k

    azure = billing.azure.to_pandas()
    eastus = _per_30_days(azure[azure["resource_location"] == "eastus"], "usage_date", "amortized_cost")
    assert all(2500 <= v <= 3100 for v in eastus.values()), eastus  # about $2.8k
    assert len(us_west_2) == len(europe_west1) == len(eastus) == 3


def test_costs_trend_up_and_weekdays_are_busier(aws):
    serving = aws[aws["service"] == "Amazon Elastic Load Balancing"].set_index("day")["unblended_cost"]
    weekday = serving[[d.weekday() < 5 for d in serving.index]].mean()
    weekend = serving[[d.weekday() >= 5 for d in serving.index]].mean()
    assert weekday > 1.1 * weekend
    assert serving.iloc[-28:].mean() > 1.05 * serving.iloc[:28].mean()


# ---------------------------------------------------------------------------------------------------------------
# AWS


def test_aws_services_and_their_peculiarities(billing, aws):
    services = set(aws["service"])
    for name in (
        "Amazon Elastic Compute Cloud - Compute",
        "EC2 - Other",
        "Amazon Simple Storage Service",
        "Amazon Elastic Kubernetes Service",
        "Amazon Elastic Load Balancing",
        "Amazon Route 53",
        "AmazonCloudWatch",
        "Amazon Relational Database Service",
        "AWS Data Transfer",
        "Amazon SageMaker",
        "Tax",
    ):
        assert name in services
    assert set(aws.loc[aws["service"] == "Amazon Route 53", "region"]) == {"global"}
    # The savings plan: compute's amortised cost is above its unblended cost, the plan's fee the other way.
    compute = aws[aws["service"] == "Amazon Elastic Compute Cloud - Compute"]
    assert (compute["amortized_cost"] > compute["unblended_cost"] + 20).all()
    plan = aws[aws["service"] == "Savings Plans for AWS Compute usage"]
    assert (plan["unblended_cost"] > plan["amortized_cost"]).all()
    # One refund: a single small negative service-day.
    negative = aws[aws["unblended_cost"] < 0]
    assert len(negative) == 1 and -20 < negative["unblended_cost"].iloc[0] < 0
    # A free-tier service: used, at no cost.
    free = aws[aws["service"] == "AWS Key Management Service"]
    assert (free["unblended_cost"] == 0).all() and (free["usage_quantity"] > 0).all()
    # Tax on the 1st of each month only.
    assert {d.day for d in aws.loc[aws["service"] == "Tax", "day"]} == {1}
    assert set(aws["currency"]) == {"USD"}


def test_aws_results_look_like_boto3s(billing):
    result = billing.aws_results[10]
    assert set(result) == {"TimePeriod", "Total", "Groups", "Estimated"} and result["Total"] == {}
    group = result["Groups"][0]
    assert len(group["Keys"]) == 2
    assert set(group["Metrics"]) == {"UnblendedCost", "AmortizedCost", "UsageQuantity"}
    for metric in group["Metrics"].values():  # plain decimal strings, as Cost Explorer sends them
        assert isinstance(metric["Amount"], str) and re.fullmatch(r"-?\d+(\.\d{1,10})?", metric["Amount"])
        assert metric["Unit"] in ("USD", "Hrs", "GB", "N/A", "Requests")
    keys = [tuple(g["Keys"]) for g in result["Groups"]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_the_last_two_aws_days_are_estimated(billing, aws):
    flags = [r["Estimated"] for r in billing.aws_results]
    assert flags == [False] * 88 + [True, True]
    assert set(aws.loc[aws["estimated"], "day"]) == {END - timedelta(days=1), END}


@pytest.mark.parametrize("page_size", [1, 7, 13, 100, 10_000])
def test_pages_hold_every_group_exactly_once(billing, page_size):
    pages = billing.aws_pages(page_size)
    assert all(len(page["ResultsByTime"]) for page in pages)
    assert all(sum(len(r["Groups"]) for r in page["ResultsByTime"]) <= page_size for page in pages)
    tokens = [page.get("NextPageToken") for page in pages]
    assert tokens[-1] is None and all(tokens[:-1]) and len(set(tokens[:-1])) == len(pages) - 1
    assert all(page["GroupDefinitions"][1] == {"Type": "DIMENSION", "Key": "REGION"} for page in pages)
    joined = [result for page in pages for result in page["ResultsByTime"]]
    keys = Counter((r["TimePeriod"]["Start"], *g["Keys"]) for r in joined for g in r["Groups"])
    assert set(keys.values()) == {1}
    assert results_to_rows(joined, "1") == results_to_rows(billing.aws_results, "1")
    if page_size < 13:  # a day's groups (13 or 14) continue on the next page, under the same TimePeriod
        assert joined[0]["TimePeriod"] == joined[1]["TimePeriod"]


def test_pages_for_part_of_the_window(billing):
    pages = billing.aws_pages(5, first_day=END - timedelta(days=2), last_day=END)
    starts = {r["TimePeriod"]["Start"] for page in pages for r in page["ResultsByTime"]}
    assert starts == {(END - timedelta(days=i)).isoformat() for i in range(3)}
    pages[0]["ResultsByTime"][0]["Groups"].clear()  # copies: the billing itself is untouched
    assert billing.aws_pages(5, first_day=END - timedelta(days=2))[0]["ResultsByTime"][0]["Groups"]


def test_pages_queued_into_moto_come_back_through_boto3(billing):
    boto3 = pytest.importorskip("boto3")
    requests = pytest.importorskip("requests")
    moto = pytest.importorskip("moto")
    pages = billing.aws_pages(40, first_day=END - timedelta(days=9))
    with moto.mock_aws():
        queued = requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results", json={"results": pages}
        )
        assert queued.status_code == 201
        client = boto3.client("ce", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
        request = {
            "TimePeriod": {
                "Start": (END - timedelta(days=9)).isoformat(),
                "End": (END + timedelta(days=1)).isoformat(),
            },
            "Granularity": "DAILY",
            "Metrics": ["UnblendedCost", "AmortizedCost", "UsageQuantity"],
        }
        results, calls = [], 0
        while True:
            answer = client.get_cost_and_usage(**request)
            calls += 1
            results += answer["ResultsByTime"]
            if not answer.get("NextPageToken"):
                break
            request["NextPageToken"] = answer["NextPageToken"]
    assert calls == len(pages) > 1
    expected = [r for r in billing.aws_results if date.fromisoformat(r["TimePeriod"]["Start"]) >= END - timedelta(9)]
    assert results_to_rows(results, "1") == results_to_rows(expected, "1")


# ---------------------------------------------------------------------------------------------------------------
# The planted anomaly


def test_the_planted_anomaly_is_a_large_spike_against_its_baseline(billing, aws):
    anomaly = billing.planted_anomaly
    assert isinstance(anomaly, PlantedAnomaly) and anomaly.provider == "aws"
    assert END - timedelta(days=6) <= anomaly.day <= END - timedelta(days=3) and 4 <= anomaly.factor <= 6
    usage = aws[aws["service"] != "Tax"].pivot_table(
        index="day", columns=["service", "region"], values="amortized_cost", aggfunc="sum"
    )
    ratio = usage / usage.shift(1).rolling(14).median()
    spike = ratio.loc[anomaly.day, (anomaly.service, anomaly.region)]
    assert spike == pytest.approx(anomaly.factor, rel=0.2)
    # Nothing else of $5 a day or more comes close: the weekly cycle and the noise stay under 1.5x.
    values, ratios = usage.to_numpy(), ratio.to_numpy()
    others = (usage.index != anomaly.day)[:, None] & (values >= 5) & np.isfinite(ratios)
    assert others.sum() > 400 and ratios[others].max() < 1.5


def test_the_anomaly_sits_outside_the_estimated_days_of_a_short_window():
    short = generate_billing(date(2027, 1, 10), days=21, seed=3)
    assert short.first_day == date(2026, 12, 21)
    assert short.planted_anomaly.day <= date(2027, 1, 7)
    assert len(short.aws_results) == 21 and short.azure["usage_date"].to_pylist()[-1] == date(2027, 1, 10)


# ---------------------------------------------------------------------------------------------------------------
# GCP


def test_gcp_is_billed_in_eur_with_a_slowly_moving_rate(gcp):
    assert set(gcp["currency"]) == {"EUR"}
    daily = gcp.groupby("day")["rate"].agg(["min", "max"])
    assert (daily["min"] == daily["max"]).all()  # one rate a day
    assert daily["min"].between(0.92, 0.95).all()
    assert daily["min"].diff().abs().max() < 0.005 and daily["min"].max() - daily["min"].min() > 0.01


def test_gcp_credits_are_negative_and_varied(billing, gcp):
    flat = pc.list_flatten(billing.gcp["credits"].combine_chunks())
    amounts = pc.struct_field(flat, "amount").to_numpy()
    assert len(amounts) and (amounts < 0).all()
    types = Counter(pc.struct_field(flat, "type").to_pylist())
    assert {"SUSTAINED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT", "PROMOTION"} <= set(types)
    assert set(gcp["credit_count"]) >= {0, 1, 2}
    assert (-gcp["credits"] <= gcp["cost"] + 1e-9).all()  # credits never exceed the cost they apply to
    # Sustained-use discounts restart with the month: none in its first week.
    sud = billing.gcp.filter(pc.equal(pc.list_value_length(billing.gcp["credits"]), 2))
    assert sud.num_rows and min(t.day for t in sud["usage_start_time"].to_pylist()) > 7


def test_gcp_skus_services_and_locations(gcp):
    skus = set(gcp["sku"])
    for sku in (
        "N2 Instance Core running in Belgium",
        "N2 Instance Ram running in Belgium",
        "Spot Preemptible N2 Instance Core running in Belgium",
        "Spot Preemptible N2 Instance Ram running in Belgium",
        "Regional Kubernetes Clusters",
        "Standard Storage Belgium",
        "Network Internet Data Transfer Out from EMEA to Americas",
        "Analysis",
        "Artifact Registry Storage",
        "Commitment v1: N2 Cpu in Belgium for 1 Year",
    ):
        assert sku in skus
    assert any(s.startswith("Vertex AI: Online/Batch Prediction") for s in skus)
    assert {"Compute Engine", "Kubernetes Engine", "Cloud Storage", "Networking", "Vertex AI", "BigQuery"} <= set(
        gcp["service"]
    )
    regular = gcp[gcp["cost_type"] == "regular"]
    assert set(regular["region"].dropna()) == {"europe-west1"}
    assert set(regular["zone"].dropna()) == {"europe-west1-b", "europe-west1-c", "europe-west1-d"}
    assert "global" in set(regular["location"])  # Cloud Monitoring
    assert regular.loc[regular["sku"].str.contains("Instance"), "resource"].notna().all()
    assert {"mlp-serving-prod", "mlp-batch-prod"} <= set(gcp["project"])


def test_gcp_labels_say_the_workload(billing):
    labels = pc.list_flatten(billing.gcp["labels"].combine_chunks())
    keys, values = pc.struct_field(labels, "key").to_pylist(), pc.struct_field(labels, "value").to_pylist()
    pairs = set(zip(keys, values, strict=True))
    assert {("workload", "model-serving"), ("workload", "feature-backfill"), ("env", "prod")} <= pairs
    lengths = set(pc.list_value_length(billing.gcp["labels"]).to_pylist())
    assert 0 in lengths and len(lengths) >= 3


def test_gcp_costs_and_usage_are_consistent(gcp):
    regular = gcp[gcp["cost_type"] == "regular"]
    assert (regular["cost_at_list"] >= regular["cost"]).all() and (regular["cost"] > 0).all()
    assert (regular["cost_at_list"] > regular["cost"]).any()  # a negotiated discount on some SKUs
    per_pricing_unit = {
        ("seconds", "hour"): 3600.0,
        ("byte-seconds", "gibibyte hour"): 2.0**30 * 3600,
        ("byte-seconds", "gibibyte month"): 2.0**30 * 3600 * 730,
        ("bytes", "gibibyte"): 2.0**30,
        ("bytes", "tebibyte"): 2.0**40,
        ("bytes", "mebibyte"): 2.0**20,
    }
    pairs = set(zip(regular["unit"], regular["pricing_unit"], strict=True))
    assert pairs <= set(per_pricing_unit)
    factor = [per_pricing_unit[p] for p in zip(regular["unit"], regular["pricing_unit"], strict=True)]
    assert np.allclose(regular["amount"], regular["pricing_amount"] * np.array(factor))
    # One list price per SKU: cost_at_list = usage in pricing units x price x the day's rate.
    price = regular["cost_at_list"] / (regular["pricing_amount"] * regular["rate"])
    spread = price.groupby([regular["sku"], regular["pricing_unit"]]).agg(lambda p: p.max() / p.min())
    assert spread.max() == pytest.approx(1.0)
    core = price[regular["sku"] == "N2 Instance Core running in Belgium"].iloc[0]
    spot = price[regular["sku"] == "Spot Preemptible N2 Instance Core running in Belgium"].iloc[0]
    assert spot == pytest.approx(0.4 * core)  # cost.spot_discount 0.6


def test_gcp_tax_rows_on_the_first_of_each_month(gcp):
    tax = gcp[gcp["cost_type"] == "tax"]
    assert sorted(set(tax["day"])) == [date(2026, 10, 1), date(2026, 11, 1)]
    assert len(tax) == 6 and (tax["cost"] > 0).all() and tax["region"].isna().all()
    october = gcp[(gcp["cost_type"] == "regular") & (gcp["start"].dt.month == 10)]
    assert tax.loc[tax["day"] == date(2026, 10, 1), "cost"].sum() == pytest.approx(
        TAX_RATE * (october["cost"] + october["credits"]).sum()
    )


def test_gcp_export_rows_makes_the_rows_asked_for_at_the_same_spend():
    start = datetime(2026, 3, 30, 22, 17)  # naive is UTC, floored to the hour; the 1st of April is inside
    small = gcp_export_rows(start, 72, gcp_min_rows_per_hour(), seed=1)
    large = gcp_export_rows(start, 72, 400, seed=1)
    regular = pc.equal(large["cost_type"], "regular")
    assert pc.sum(regular).as_py() == 72 * 400 and large.schema == GCP_SOURCE_SCHEMA
    assert large["usage_start_time"][0].as_py() == datetime(2026, 3, 30, 22, tzinfo=UTC)
    assert pc.sum(pc.equal(large["cost_type"], "tax")).as_py() == 3
    assert pc.sum(large["cost"]).as_py() == pytest.approx(pc.sum(small["cost"]).as_py(), rel=0.05)
    assert gcp_export_rows(start, 72, 400, seed=1).equals(large)
    resources = pc.struct_field(large["resource"], "name").unique()
    assert len(resources) > 90  # more rows an hour: more resources (each with a few SKUs), not more money
    with pytest.raises(ValueError, match="rows_per_hour must be at least"):
        gcp_export_rows(start, 1, gcp_min_rows_per_hour() - 1)


# ---------------------------------------------------------------------------------------------------------------
# Azure


def test_azure_reservation_is_bought_on_the_first_and_amortised_over_the_month(billing):
    azure = billing.azure.to_pandas()
    assert set(azure["currency"]) == {"USD"} and set(azure["subscription_id"]) == {AZURE_SUBSCRIPTION_ID}
    for name in (
        "Virtual Machines",
        "Storage",
        "Azure Kubernetes Service",
        "Bandwidth",
        "Load Balancer",
        "Azure DNS",
        "Azure Monitor",
        "Azure Database for PostgreSQL",
        "Azure Machine Learning",
    ):
        assert name in set(azure["service_name"])
    purchases = azure[azure["resource_location"] == "unassigned"]
    assert [d.day for d in purchases["usage_date"]] == [1, 1] and (purchases["amortized_cost"] == 0).all()
    vms = azure[(azure["service_name"] == "Virtual Machines") & (azure["resource_location"] == "eastus")]
    assert (vms["amortized_cost"] > vms["actual_cost"] + 15).all()
    october = azure[azure["usage_date"].astype(str).str.startswith("2026-10")]
    assert october["actual_cost"].sum() == pytest.approx(october["amortized_cost"].sum())
    others = azure[azure["service_name"] != "Virtual Machines"]
    assert (others["actual_cost"] == others["amortized_cost"]).all()


def test_azure_subscription_is_the_catalogues_scope():
    from include.catalogue import load_catalogue

    assert load_catalogue().cost.sources.azure.scope == f"/subscriptions/{AZURE_SUBSCRIPTION_ID}"
