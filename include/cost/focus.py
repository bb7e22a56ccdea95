"""The FOCUS 1.2 table every cloud's billing data is normalised to, and the rules of that normalisation.

FOCUS (the FinOps Open Cost and Usage Specification) names the columns; provider-specific extras are
``x_`` columns, as the specification allows. All money columns are in the reporting currency
(``BillingCurrency``); what the source said, in its own currency, is kept in ``x_Source*`` columns so
totals can be reconciled against the source.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.errors import CurrencyRateMissing, ReconciliationError

if TYPE_CHECKING:
    from include.catalogue.cost import CostConfig

log = logging.getLogger(__name__)

FOCUS_VERSION = "1.2"

_TS = pa.timestamp("us", tz="UTC")

FOCUS_SCHEMA = pa.schema(
    [
        # Costs, in the reporting currency.
        ("BilledCost", pa.float64()),  # what is invoiced, net of credits
        ("EffectiveCost", pa.float64()),  # amortised: commitments spread over the usage they cover
        ("ListCost", pa.float64()),  # at public list price (= BilledCost where the source has none, see x_)
        ("ContractedCost", pa.float64()),
        ("BillingCurrency", pa.string()),
        ("BillingAccountId", pa.string()),
        ("ChargePeriodStart", _TS),  # inclusive, UTC
        ("ChargePeriodEnd", _TS),  # exclusive, UTC
        ("ChargeCategory", pa.string()),  # Usage | Purchase | Tax | Credit | Adjustment
        ("ChargeClass", pa.string()),  # null, or Correction for a restated earlier period
        ("ChargeDescription", pa.string()),
        ("ChargeFrequency", pa.string()),  # Usage-Based | Recurring | One-Time
        ("ProviderName", pa.string()),  # AWS | Google Cloud | Microsoft Azure
        ("PublisherName", pa.string()),
        ("InvoiceIssuerName", pa.string()),
        ("ServiceName", pa.string()),
        ("ServiceCategory", pa.string()),  # Compute | Storage | Networking | Databases | AI and Machine Learning | ...
        ("RegionId", pa.string()),
        ("RegionName", pa.string()),
        ("AvailabilityZone", pa.string()),
        ("ResourceId", pa.string()),
        ("ResourceName", pa.string()),
        ("SubAccountId", pa.string()),
        ("SubAccountName", pa.string()),
        ("PricingQuantity", pa.float64()),
        ("PricingUnit", pa.string()),
        ("ConsumedQuantity", pa.float64()),
        ("ConsumedUnit", pa.string()),
        ("PricingCategory", pa.string()),  # Standard | Dynamic (spot) | Committed | null when unknown
        ("SkuId", pa.string()),
        ("Tags", pa.map_(pa.string(), pa.string())),
        # Provider-specific extras.
        ("x_Provider", pa.string()),  # aws | gcp | azure: the platform's short name, the partition key
        ("x_SourceCurrency", pa.string()),
        ("x_ExchangeRate", pa.float64()),  # reporting-currency units per source unit
        ("x_SourceBilledCost", pa.float64()),  # BilledCost as the source stated it, in x_SourceCurrency
        ("x_SourceEffectiveCost", pa.float64()),
        ("x_Credits", pa.float64()),  # credits netted into BilledCost (GCP), reporting currency, <= 0
        ("x_ListCostKnown", pa.bool_()),  # false where the source has no list price and ListCost = BilledCost
        ("x_Estimated", pa.bool_()),  # the source marks the figure as estimated (AWS: may be restated)
        ("x_SkuDescription", pa.string()),
    ]
)

FOCUS_COLUMNS = FOCUS_SCHEMA.names
PROVIDER_NAMES = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Microsoft Azure"}


# FOCUS ServiceCategory of each service name the three sources use; others are "Other" and logged.
SERVICE_CATEGORIES: dict[str, str] = {
    # AWS Cost Explorer SERVICE values
    "Amazon Elastic Compute Cloud - Compute": "Compute",
    "EC2 - Other": "Compute",
    "Amazon Elastic Kubernetes Service": "Compute",
    "Amazon Simple Storage Service": "Storage",
    "Amazon Elastic Load Balancing": "Networking",
    "Amazon Route 53": "Networking",
    "AWS Data Transfer": "Networking",
    "Amazon Virtual Private Cloud": "Networking",
    "AmazonCloudWatch": "Management and Governance",
    "Amazon Relational Database Service": "Databases",
    "Amazon SageMaker": "AI and Machine Learning",
    "AWS Key Management Service": "Security",
    "Savings Plans for AWS Compute usage": "Compute",
    "Tax": "Other",
    # GCP service.description values
    "Compute Engine": "Compute",
    "Kubernetes Engine": "Compute",
    "Cloud Storage": "Storage",
    "Artifact Registry": "Storage",
    "Networking": "Networking",
    "Cloud DNS": "Networking",
    "Cloud Monitoring": "Management and Governance",
    "Cloud Logging": "Management and Governance",
    "BigQuery": "Analytics",
    "Vertex AI": "AI and Machine Learning",
    "Cloud SQL": "Databases",
    # Azure ServiceName values
    "Virtual Machines": "Compute",
    "Azure Kubernetes Service": "Compute",
    "Storage": "Storage",
    "Bandwidth": "Networking",
    "Load Balancer": "Networking",
    "Azure DNS": "Networking",
    "Virtual Network": "Networking",
    "Azure Monitor": "Management and Governance",
    "Log Analytics": "Management and Governance",
    "Azure Database for PostgreSQL": "Databases",
    "Azure Machine Learning": "AI and Machine Learning",
}
# AWS services whose charges are commitment fees, not usage: FOCUS ChargeCategory Purchase, Recurring.
AWS_PURCHASE_SERVICES = {"Savings Plans for AWS Compute usage"}
# GCP cost_type -> FOCUS ChargeCategory; an unknown type is an Adjustment, logged.
GCP_CHARGE_CATEGORIES = {"regular": "Usage", "tax": "Tax", "adjustment": "Adjustment", "rounding_error": "Adjustment"}
# Region ids the sources use for charges that belong to no region.
NO_REGION = {"", "global", "noregion", "unassigned", "unknown"}


@dataclass(frozen=True)
class ExchangeRates:
    """Reporting-currency units per unit of each currency (the reporting currency itself is 1)."""

    reporting_currency: str
    rates: dict[str, float]

    @classmethod
    def from_config(cls, cost: CostConfig) -> ExchangeRates:
        return cls(cost.reporting_currency, dict(cost.exchange_rates))

    def for_column(self, provider: str, currencies: pa.ChunkedArray | pa.Array) -> pa.Array:
        """The rate of every row; a currency without a rate raises ``CurrencyRateMissing`` naming it."""
        encoded = _dictionary(currencies)
        known = {self.reporting_currency: 1.0, **self.rates}
        missing = sorted(str(c) for c in encoded.dictionary.to_pylist() if c not in known)
        if missing:
            raise CurrencyRateMissing(
                f"{provider} billing data is in {', '.join(missing)}, which has no rate in cost.exchange_rates "
                f"(reporting currency {self.reporting_currency}); add one: no total is reported without it"
            )
        if encoded.null_count:
            raise CurrencyRateMissing(f"{provider} billing data has {encoded.null_count} row(s) with no currency")
        table = pa.array([known[c] for c in encoded.dictionary.to_pylist()], pa.float64())
        return table.take(encoded.indices)


@dataclass(frozen=True)
class Normalised:
    """A provider's FOCUS rows and what the normaliser noticed on the way."""

    table: pa.Table
    notes: list[str]


def _dictionary(values: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.dictionary_encode()


def _per_value(values: pa.ChunkedArray | pa.Array, function, out_type: pa.DataType) -> pa.Array:
    """``function`` applied once per distinct value, spread back to every row (strings repeat a lot in bills)."""
    encoded = _dictionary(values)
    mapped = pa.array([function(v) for v in encoded.dictionary.to_pylist()], out_type)
    return mapped.take(encoded.indices)


def _service_categories(provider: str, services, notes: list[str]) -> pa.Array:
    encoded = _dictionary(services)
    unknown = sorted(s for s in encoded.dictionary.to_pylist() if s not in SERVICE_CATEGORIES)
    if unknown:
        notes.append(f"{provider}: ServiceCategory Other for unmapped service(s) {', '.join(unknown)}")
        log.warning(notes[-1])
    mapped = pa.array([SERVICE_CATEGORIES.get(s, "Other") for s in encoded.dictionary.to_pylist()], pa.string())
    return mapped.take(encoded.indices)


def _region_ids(regions) -> pa.Array:
    return _per_value(regions, lambda r: None if r is None or r.lower() in NO_REGION else r.lower(), pa.string())


def _day_start(days) -> pa.Array:
    return pc.cast(pc.cast(days, pa.timestamp("s")), pa.timestamp("us")).cast(_TS)


def _constant(value, n: int, type_: pa.DataType) -> pa.Array:
    return pa.nulls(n, type_) if value is None else pa.repeat(pa.scalar(value, type_), n)


def _assemble(columns: dict[str, pa.Array], n: int) -> pa.Table:
    """A FOCUS table from ``columns``; FOCUS columns not given are null."""
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in FOCUS_SCHEMA]
    return pa.Table.from_arrays(
        [a.cast(f.type) for a, f in zip(arrays, FOCUS_SCHEMA, strict=True)], schema=FOCUS_SCHEMA
    )


def _check_finite(provider: str, name: str, values) -> None:
    bad = pc.sum(pc.or_(pc.is_nan(values), pc.is_null(values))).as_py() if len(values) else 0
    if bad:
        raise ValueError(f"{provider} billing source has {bad} row(s) whose {name} is empty or not a number")


def _negative_usage_as_credit(provider: str, category: pa.Array, billed: pa.Array, notes: list[str]) -> pa.Array:
    """A negative cost in a usage row is a refund or credit the source netted in: ChargeCategory Credit, kept."""
    negative = pc.and_(pc.less(billed, 0), pc.equal(category, "Usage"))
    count = pc.sum(negative).as_py() or 0
    if count:
        notes.append(f"{provider}: {count} row(s) with a negative cost kept as ChargeCategory Credit")
        log.info(notes[-1])
    return pc.if_else(negative, "Credit", category)


def _daily_cost_columns(
    provider: str, source: pa.Table, billed: str, effective: str, day: str, rates: ExchangeRates
) -> dict[str, pa.Array]:
    """The columns AWS and Azure fill alike: a daily charge period, billed and effective cost at the row's
    exchange rate, and no list price (ListCost and ContractedCost = BilledCost, ``x_ListCostKnown`` false)."""
    n = source.num_rows
    for name in (billed, effective):
        _check_finite(provider, name, source[name])
    rate = rates.for_column(provider, source["currency"])
    billed_cost = pc.multiply(source[billed], rate)
    start = _day_start(source[day])
    return {
        "BilledCost": billed_cost,
        "EffectiveCost": pc.multiply(source[effective], rate),
        "ListCost": billed_cost,
        "ContractedCost": billed_cost,
        "BillingCurrency": _constant(rates.reporting_currency, n, pa.string()),
        "ChargePeriodStart": start,
        "ChargePeriodEnd": pc.add(start, pa.scalar(timedelta(days=1), pa.duration("us"))),
        "x_Provider": _constant(provider, n, pa.string()),
        "x_SourceCurrency": source["currency"],
        "x_ExchangeRate": rate,
        "x_SourceBilledCost": source[billed],
        "x_SourceEffectiveCost": source[effective],
        "x_Credits": _constant(0.0, n, pa.float64()),
        "x_ListCostKnown": _constant(False, n, pa.bool_()),
    }


def normalise_aws(source: pa.Table, rates: ExchangeRates) -> Normalised:
    """Cost Explorer rows (``AWS_SOURCE_SCHEMA``) to FOCUS.

    BilledCost is unblended cost, EffectiveCost amortised cost. Cost Explorer has no list price: ListCost and
    ContractedCost equal BilledCost, with ``x_ListCostKnown`` false. The service "Tax" is ChargeCategory Tax;
    savings-plan fees are Purchase, Recurring.
    """
    n, notes = source.num_rows, []
    columns = _daily_cost_columns("aws", source, "unblended_cost", "amortized_cost", "day", rates)
    purchase = pc.is_in(source["service"], pa.array(sorted(AWS_PURCHASE_SERVICES)))
    category = pc.if_else(pc.equal(source["service"], "Tax"), "Tax", pc.if_else(purchase, "Purchase", "Usage"))
    unit = _per_value(source["usage_unit"], lambda u: None if u in (None, "N/A") else u, pa.string())
    columns |= {
        "BillingAccountId": source["account_id"],
        "ChargeCategory": _negative_usage_as_credit("aws", category, columns["BilledCost"], notes),
        "ChargeDescription": source["service"],
        "ChargeFrequency": pc.if_else(purchase, "Recurring", "Usage-Based"),
        "ProviderName": _constant("AWS", n, pa.string()),
        "PublisherName": _constant("AWS", n, pa.string()),
        "InvoiceIssuerName": _constant("AWS", n, pa.string()),
        "ServiceName": source["service"],
        "ServiceCategory": _service_categories("aws", source["service"], notes),
        "RegionId": _region_ids(source["region"]),
        "SubAccountId": source["account_id"],
        "PricingQuantity": source["usage_quantity"],
        "PricingUnit": unit,
        "ConsumedQuantity": source["usage_quantity"],
        "ConsumedUnit": unit,
        "x_Estimated": source["estimated"],
    }
    return Normalised(_assemble(columns, n), notes)


def _credit_totals(credits: pa.ChunkedArray) -> np.ndarray:
    """The sum of each row's credits array (0 for none), without a Python loop over rows."""
    credits = credits.combine_chunks() if isinstance(credits, pa.ChunkedArray) else credits
    n = len(credits)
    flat = pc.list_flatten(credits)
    if len(flat) == 0:
        return np.zeros(n)
    amounts = pc.fill_null(pc.struct_field(flat, "amount"), 0.0).to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(credits).to_numpy(zero_copy_only=False)
    return np.bincount(parents, weights=amounts, minlength=n)


def _labels_as_tags(labels: pa.ChunkedArray) -> pa.Array:
    """GCP labels (list of key/value structs) as a FOCUS Tags map, sharing the same buffers."""
    labels = labels.combine_chunks() if isinstance(labels, pa.ChunkedArray) else labels
    flat = labels.flatten()
    return pa.MapArray.from_arrays(
        labels.offsets, flat.field("key"), flat.field("value"), mask=labels.is_null() if labels.null_count else None
    )


def _gcp_pricing_category(sku: str | None) -> str | None:
    if sku is None:
        return None
    if "Spot" in sku or "Preemptible" in sku:
        return "Dynamic"
    if sku.startswith("Commitment"):
        return "Committed"
    return "Standard"


def normalise_gcp(source: pa.Table, rates: ExchangeRates) -> Normalised:
    """BigQuery billing-export rows (``GCP_SOURCE_SCHEMA``) to FOCUS.

    Credits are netted: BilledCost = EffectiveCost = cost + the sum of the row's credits (credits are
    negative), ContractedCost = cost, ListCost = cost_at_list (cost where the export has none, with
    ``x_ListCostKnown`` false). cost_type gives ChargeCategory (regular Usage, tax Tax, adjustment and
    rounding_error Adjustment; an unknown type is an Adjustment, noted). On usage rows, spot and preemptible
    SKUs are PricingCategory Dynamic, commitment SKUs Committed, others Standard. Labels become Tags.
    """
    n, notes = source.num_rows, []
    _check_finite("gcp", "cost", source["cost"])
    rate = rates.for_column("gcp", source["currency"])
    credits = pa.array(_credit_totals(source["credits"]), pa.float64())
    source_billed = pc.add(source["cost"], credits)
    billed = pc.multiply(source_billed, rate)
    list_known = pc.is_valid(source["cost_at_list"])
    unknown_types = sorted(
        t for t in _dictionary(source["cost_type"]).dictionary.to_pylist() if t not in GCP_CHARGE_CATEGORIES
    )
    if unknown_types:
        notes.append(f"gcp: unknown cost_type(s) {', '.join(map(str, unknown_types))} classed as Adjustment")
        log.warning(notes[-1])
    category = _per_value(source["cost_type"], lambda t: GCP_CHARGE_CATEGORIES.get(t, "Adjustment"), pa.string())
    service, sku, project = source["service"], source["sku"], source["project"]
    location, resource, usage = source["location"], source["resource"], source["usage"]
    sku_description = pc.struct_field(sku, "description")
    service_name = pc.struct_field(service, "description")
    columns = {
        "BilledCost": billed,
        "EffectiveCost": billed,
        "ListCost": pc.multiply(pc.coalesce(source["cost_at_list"], source["cost"]), rate),
        "ContractedCost": pc.multiply(source["cost"], rate),
        "BillingCurrency": _constant(rates.reporting_currency, n, pa.string()),
        "BillingAccountId": source["billing_account_id"],
        "ChargePeriodStart": source["usage_start_time"],
        "ChargePeriodEnd": source["usage_end_time"],
        "ChargeCategory": _negative_usage_as_credit("gcp", category, billed, notes),
        "ChargeDescription": sku_description,
        "ChargeFrequency": _constant("Usage-Based", n, pa.string()),
        "ProviderName": _constant("Google Cloud", n, pa.string()),
        "PublisherName": _constant("Google Cloud", n, pa.string()),
        "InvoiceIssuerName": _constant("Google Cloud", n, pa.string()),
        "ServiceName": service_name,
        "ServiceCategory": _service_categories("gcp", service_name, notes),
        "RegionId": _region_ids(pc.struct_field(location, "region")),
        "AvailabilityZone": pc.struct_field(location, "zone"),
        "ResourceId": pc.struct_field(resource, "global_name"),
        "ResourceName": pc.struct_field(resource, "name"),
        "SubAccountId": pc.struct_field(project, "id"),
        "SubAccountName": pc.struct_field(project, "name"),
        "PricingQuantity": pc.struct_field(usage, "amount_in_pricing_units"),
        "PricingUnit": pc.struct_field(usage, "pricing_unit"),
        "ConsumedQuantity": pc.struct_field(usage, "amount"),
        "ConsumedUnit": pc.struct_field(usage, "unit"),
        "PricingCategory": pc.if_else(
            pc.equal(category, "Usage"), _per_value(sku_description, _gcp_pricing_category, pa.string()), None
        ),
        "SkuId": pc.struct_field(sku, "id"),
        "Tags": _labels_as_tags(source["labels"]),
        "x_Provider": _constant("gcp", n, pa.string()),
        "x_SourceCurrency": source["currency"],
        "x_ExchangeRate": rate,
        "x_SourceBilledCost": source_billed,
        "x_SourceEffectiveCost": source_billed,
        "x_Credits": pc.multiply(credits, rate),
        "x_ListCostKnown": list_known,
        "x_Estimated": _constant(False, n, pa.bool_()),
        "x_SkuDescription": sku_description,
    }
    return Normalised(_assemble(columns, n), notes)


def normalise_azure(source: pa.Table, rates: ExchangeRates) -> Normalised:
    """Cost Management rows (``AZURE_SOURCE_SCHEMA``) to FOCUS.

    BilledCost is the ActualCost query's cost, EffectiveCost the AmortizedCost query's. The Query API has no
    list price: ListCost and ContractedCost equal BilledCost, with ``x_ListCostKnown`` false.
    """
    n, notes = source.num_rows, []
    columns = _daily_cost_columns("azure", source, "actual_cost", "amortized_cost", "usage_date", rates)
    usage = _constant("Usage", n, pa.string())
    columns |= {
        "BillingAccountId": source["subscription_id"],
        "ChargeCategory": _negative_usage_as_credit("azure", usage, columns["BilledCost"], notes),
        "ChargeDescription": source["service_name"],
        "ChargeFrequency": _constant("Usage-Based", n, pa.string()),
        "ProviderName": _constant("Microsoft Azure", n, pa.string()),
        "PublisherName": _constant("Microsoft", n, pa.string()),
        "InvoiceIssuerName": _constant("Microsoft", n, pa.string()),
        "ServiceName": source["service_name"],
        "ServiceCategory": _service_categories("azure", source["service_name"], notes),
        "RegionId": _region_ids(source["resource_location"]),
        "SubAccountId": source["subscription_id"],
        "x_Estimated": _constant(False, n, pa.bool_()),
    }
    return Normalised(_assemble(columns, n), notes)


NORMALISERS = {"aws": normalise_aws, "gcp": normalise_gcp, "azure": normalise_azure}


def source_days(provider: str, source: pa.Table) -> pa.Array:
    """The UTC day of every source row."""
    if provider == "gcp":
        return pc.cast(source["usage_start_time"], pa.date32())
    return source["day" if provider == "aws" else "usage_date"]


def _totals_by_day_and_currency(days, currencies, amounts) -> dict[tuple[date, str], float]:
    grouped = (
        pa.table({"day": days, "currency": currencies, "amount": amounts})
        .group_by(["day", "currency"])
        .aggregate([("amount", "sum")])
    )
    keys = zip(grouped["day"].to_pylist(), grouped["currency"].to_pylist(), strict=True)
    return dict(zip(keys, grouped["amount_sum"].to_pylist(), strict=True))


def source_totals(provider: str, source: pa.Table) -> dict[tuple[date, str], float]:
    """The source's own billed total per (UTC day, currency): what the normalised rows must add up to.

    AWS: unblended cost. GCP: cost plus credits. Azure: the ActualCost query's cost.
    """
    if provider == "gcp":
        amounts = pc.add(source["cost"], pa.array(_credit_totals(source["credits"]), pa.float64()))
    else:
        amounts = source["unblended_cost" if provider == "aws" else "actual_cost"]
    return _totals_by_day_and_currency(source_days(provider, source), source["currency"], amounts)


def reconcile(provider: str, source: pa.Table, focus: pa.Table) -> dict[tuple[date, str], float]:
    """Check that the FOCUS rows add up to the source's totals per day and currency; return those totals.

    Raises ``ReconciliationError`` naming the provider, day and both totals when they differ by more than
    a millionth (floating-point summation order is the only allowed difference).
    """
    expected = source_totals(provider, source)
    actual = _totals_by_day_and_currency(
        pc.cast(focus["ChargePeriodStart"], pa.date32()), focus["x_SourceCurrency"], focus["x_SourceBilledCost"]
    )
    for key in sorted(set(expected) | set(actual)):
        want, got = expected.get(key, 0.0), actual.get(key, 0.0)
        if abs(want - got) > 1e-6 * max(1.0, abs(want)):
            day, currency = key
            raise ReconciliationError(
                f"{provider} {day}: normalised total {got:.6f} {currency} differs from the source's {want:.6f}"
            )
    return expected


def rows_by_day(table: pa.Table, days_column: pa.Array) -> dict[date, pa.Table]:
    """Split ``table`` into one table per UTC day given each row's day."""
    days = days_column.combine_chunks() if isinstance(days_column, pa.ChunkedArray) else days_column
    encoded = days.dictionary_encode()
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(indices, kind="stable")
    bounds = np.searchsorted(indices[order], np.arange(len(encoded.dictionary) + 1))
    return {
        day: table.take(pa.array(order[bounds[i] : bounds[i + 1]]))
        for i, day in enumerate(encoded.dictionary.to_pylist())
    }
