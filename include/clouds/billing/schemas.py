"""What each extractor returns: one Arrow table per cloud, in the source's own terms, one row per source line.

The normalisers in ``include.cost.focus`` read exactly these columns. An extractor that meets a source whose
columns changed raises ``SchemaDrift`` (a missing column) or logs and drops what it does not know (a new one),
so drift is found where it happens, not as a wrong total later.
"""

from __future__ import annotations

import pyarrow as pa

from include.errors import SchemaDrift

# AWS Cost Explorer GetCostAndUsage, DAILY, grouped by SERVICE and REGION: one row per day, service, region.
AWS_SOURCE_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),  # TimePeriod.Start (UTC day)
        ("service", pa.string()),  # group key 1, e.g. "Amazon Elastic Compute Cloud - Compute"
        ("region", pa.string()),  # group key 2, e.g. "us-west-2" or "global"
        ("unblended_cost", pa.float64()),
        ("amortized_cost", pa.float64()),
        ("currency", pa.string()),  # Metrics.UnblendedCost.Unit
        ("usage_quantity", pa.float64()),
        ("usage_unit", pa.string()),  # Metrics.UsageQuantity.Unit ("N/A" when services are mixed)
        ("estimated", pa.bool_()),  # ResultsByTime.Estimated: the day may still be restated
        ("account_id", pa.string()),  # the account the connection reads (STS caller identity)
    ]
)

# The Cloud Billing export to BigQuery (standard or detailed table), the columns the normaliser reads,
# with BigQuery's own names and nesting, as ``QueryJob.to_arrow()`` returns them.
_KEY_VALUE = pa.struct([("key", pa.string()), ("value", pa.string())])
GCP_SOURCE_SCHEMA = pa.schema(
    [
        ("billing_account_id", pa.string()),
        ("service", pa.struct([("id", pa.string()), ("description", pa.string())])),
        ("sku", pa.struct([("id", pa.string()), ("description", pa.string())])),
        ("usage_start_time", pa.timestamp("us", tz="UTC")),
        ("usage_end_time", pa.timestamp("us", tz="UTC")),
        ("project", pa.struct([("id", pa.string()), ("name", pa.string())])),
        ("labels", pa.list_(_KEY_VALUE)),
        (
            "location",
            pa.struct([(name, pa.string()) for name in ("location", "country", "region", "zone")]),
        ),
        ("resource", pa.struct([("name", pa.string()), ("global_name", pa.string())])),
        ("cost", pa.float64()),  # in `currency`, before credits
        ("cost_at_list", pa.float64()),
        ("currency", pa.string()),
        ("currency_conversion_rate", pa.float64()),  # USD -> `currency`, as Google applied it
        (
            "usage",
            pa.struct(
                [
                    ("amount", pa.float64()),
                    ("unit", pa.string()),
                    ("amount_in_pricing_units", pa.float64()),
                    ("pricing_unit", pa.string()),
                ]
            ),
        ),
        (
            "credits",
            pa.list_(
                pa.struct(
                    [
                        ("name", pa.string()),
                        ("amount", pa.float64()),  # negative, in `currency`
                        ("full_name", pa.string()),
                        ("id", pa.string()),
                        ("type", pa.string()),  # SUSTAINED_USAGE_DISCOUNT, COMMITTED_USAGE_DISCOUNT, PROMOTION, ...
                    ]
                )
            ),
        ),
        ("cost_type", pa.string()),  # regular | tax | adjustment | rounding_error
    ]
)

# Azure Cost Management Query (Daily, grouped by ServiceName and ResourceLocation), run once with type
# ActualCost and once with AmortizedCost and joined on the group: one row per day, service, location.
AZURE_SOURCE_SCHEMA = pa.schema(
    [
        ("usage_date", pa.date32()),  # UsageDate, which the API sends as a number such as 20261101
        ("service_name", pa.string()),  # e.g. "Virtual Machines"
        ("resource_location", pa.string()),  # e.g. "eastus" (the API may send "EastUS"; lower-cased here)
        ("currency", pa.string()),
        ("actual_cost", pa.float64()),  # ActualCost query, Cost column (billing currency)
        ("amortized_cost", pa.float64()),  # AmortizedCost query, Cost column
        ("subscription_id", pa.string()),  # from the scope
    ]
)

SOURCE_SCHEMAS: dict[str, pa.Schema] = {
    "aws": AWS_SOURCE_SCHEMA,
    "gcp": GCP_SOURCE_SCHEMA,
    "azure": AZURE_SOURCE_SCHEMA,
}


def conform(provider: str, table: pa.Table) -> pa.Table:
    """Return ``table`` with exactly the provider's source columns, in order and cast to their types.

    A missing column, or one whose type cannot be cast, raises ``SchemaDrift`` naming it. Columns the
    platform does not read are dropped; ``unknown_columns`` names them for the extract task's log.
    """
    schema = SOURCE_SCHEMAS[provider]
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise SchemaDrift(f"{provider} billing source is missing column(s) {', '.join(missing)}")
    columns = []
    for field in schema:
        column = table.column(field.name)
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise SchemaDrift(
                    f"{provider} billing source column {field.name} is {column.type}, expected {field.type}: {error}"
                ) from None
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def unknown_columns(provider: str, table: pa.Table) -> list[str]:
    """Columns in ``table`` that the platform does not read (logged by the extract task as drift)."""
    return [name for name in table.column_names if name not in SOURCE_SCHEMAS[provider].names]
