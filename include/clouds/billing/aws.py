"""AWS Cost Explorer ``GetCostAndUsage``: daily cost per service and region, through the amazon provider.

One request covers the whole window (Cost Explorer's end date is exclusive) and is followed through
``NextPageToken``. Throttling (``LimitExceededException``) is retried by botocore as the connection's
``config_kwargs`` say (for example ``{"retries": {"mode": "adaptive", "max_attempts": 10}}``); what still
fails becomes ``SourceUnavailable`` and the Airflow task's retries take over.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pyarrow as pa

from include.catalogue.cost import AwsCostSource
from include.clouds.billing.schemas import AWS_SOURCE_SCHEMA
from include.errors import SchemaDrift, SourceUnavailable

log = logging.getLogger(__name__)

METRICS = ("UnblendedCost", "AmortizedCost", "UsageQuantity")
GROUP_BY = [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "REGION"}]
MAX_PAGES = 1000  # a loop guard: a real window of a few days is a handful of pages


def cost_explorer_client(source: AwsCostSource):
    """A boto3 Cost Explorer client and the account id, from the source's Airflow connection."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

    hook = AwsGenericHook(aws_conn_id=source.connection, client_type="ce")
    return hook.conn, hook.account_id


def results_to_rows(results: list[dict], account_id: str) -> dict[str, list]:
    """Flatten ``ResultsByTime`` groups into AWS_SOURCE_SCHEMA columns; a group missing a metric is drift."""
    columns: dict[str, list] = {name: [] for name in AWS_SOURCE_SCHEMA.names}
    for result in results:
        day = date.fromisoformat(result["TimePeriod"]["Start"])
        for group in result.get("Groups", []):
            keys, metrics = group["Keys"], group["Metrics"]
            missing = [name for name in METRICS if name not in metrics]
            if len(keys) != 2 or missing:
                raise SchemaDrift(
                    f"aws Cost Explorer group for {day} has keys {keys} and metrics {sorted(metrics)}; "
                    f"expected [SERVICE, REGION] and {', '.join(METRICS)}"
                )
            unblended, amortized, usage = (metrics[name] for name in METRICS)
            if amortized["Unit"] != unblended["Unit"]:
                raise SchemaDrift(
                    f"aws {keys[0]} on {day}: amortised in {amortized['Unit']}, unblended in {unblended['Unit']}"
                )
            columns["day"].append(day)
            columns["service"].append(keys[0])
            columns["region"].append(keys[1] or "global")
            columns["unblended_cost"].append(float(unblended["Amount"]))
            columns["amortized_cost"].append(float(amortized["Amount"]))
            columns["currency"].append(unblended["Unit"])
            columns["usage_quantity"].append(float(usage["Amount"]))
            columns["usage_unit"].append(usage["Unit"])
            columns["estimated"].append(bool(result.get("Estimated", False)))
            columns["account_id"].append(account_id)
    return columns


def extract_aws(source: AwsCostSource, first_day: date, last_day: date) -> pa.Table:
    """Daily unblended and amortised cost and usage per service and region for ``first_day``..``last_day``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client, account_id = cost_explorer_client(source)
    except (BotoCoreError, ClientError) as error:
        raise SourceUnavailable(f"aws connection {source.connection!r} is unusable or unreachable: {error}") from error
    request = {
        "TimePeriod": {"Start": first_day.isoformat(), "End": (last_day + timedelta(days=1)).isoformat()},
        "Granularity": "DAILY",
        "Metrics": list(METRICS),
        "GroupBy": GROUP_BY,
    }
    results: list[dict] = []
    pages = 0
    while pages < MAX_PAGES:
        pages += 1
        try:
            answer = client.get_cost_and_usage(**request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise SourceUnavailable(f"aws Cost Explorer for account {account_id} answered {code}: {error}") from error
        except BotoCoreError as error:
            raise SourceUnavailable(f"aws Cost Explorer for account {account_id} is unreachable: {error}") from error
        results.extend(
            result
            for result in answer.get("ResultsByTime", [])
            if first_day <= date.fromisoformat(result["TimePeriod"]["Start"]) <= last_day
        )
        token = answer.get("NextPageToken")
        if not token:
            break
        request["NextPageToken"] = token
    else:
        raise SourceUnavailable(f"aws Cost Explorer kept paging past {MAX_PAGES} pages for {first_day}..{last_day}")
    log.info("aws Cost Explorer: %d day results in %d page(s) for account %s", len(results), pages, account_id)
    return pa.table(results_to_rows(results, account_id), schema=AWS_SOURCE_SCHEMA)
