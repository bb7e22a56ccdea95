"""Seed the local billing sources with generated billing data, so the cost DAG has something real to read.

``localdev.synthetic_billing`` makes 90 days (ending yesterday, UTC) of AWS, GCP and Azure billing, with one
planted anomaly. Each source gets it through its own API, at the endpoint its Airflow connection names (so
the same command works on this machine and inside Docker Compose):

- AWS: Cost Explorer pages queued in moto (``POST /moto-api/static/ce/cost-and-usage-results``), which moto
  hands out one per distinct request, in order, whatever dates the request names; the extractor keeps only the
  days of its window;
- GCP: rows streamed into the billing-export table of the BigQuery stand-in (``tabledata.insertAll``);
- Azure: rows posted to the Cost Management stand-in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx

from include.catalogue import Catalogue
from localdev.synthetic_billing import SyntheticBilling, generate_billing

AWS_PAGE_SIZE = 500  # Cost Explorer groups per page


def queue_cost_explorer_pages(moto_url: str, pages: list[dict]) -> None:
    """Queue ``GetCostAndUsage`` answers in moto: the next requests get them in this order."""
    answer = httpx.post(f"{moto_url}/moto-api/static/ce/cost-and-usage-results", json={"results": pages}, timeout=30)
    answer.raise_for_status()


def _extra(conn_id: str) -> dict:
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id).extra_dejson


def seed_billing(catalogue: Catalogue, end_day: date | None = None, days: int = 90) -> SyntheticBilling:
    """Generate ``days`` of billing ending ``end_day`` (default yesterday, UTC) and load every configured source."""
    from localdev.bigquery_standin import seed_billing_export
    from localdev.cost_management_standin import seed_cost_rows

    end_day = end_day or datetime.now(UTC).date() - timedelta(days=1)
    billing = generate_billing(end_day, days=days)
    sources = catalogue.cost.sources if catalogue.cost else None
    if sources is None:
        return billing
    if sources.aws is not None:
        queue_cost_explorer_pages(_extra(sources.aws.connection)["endpoint_url"], billing.aws_pages(AWS_PAGE_SIZE))
    if sources.gcp is not None:
        seed_billing_export(_extra(sources.gcp.connection)["api_endpoint"], sources.gcp.table, billing.gcp)
    if sources.azure is not None:
        azure = _extra(sources.azure.connection)
        seed_cost_rows(
            azure["management_endpoint"], billing.azure.drop_columns(["subscription_id"]), azure["ca_bundle"]
        )
    return billing
