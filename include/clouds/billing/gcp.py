"""The Cloud Billing export in BigQuery: one parameterised query per window, through the google provider's hook.

The export table is read through ``BigQueryEndpointHook`` (``BigQueryHook`` plus an ``api_endpoint``
connection extra), so production and the local stand-in differ only in the connection. The table's
schema is read first: a column the platform reads that the table lacks is ``SchemaDrift`` naming it.
Then one query, with the window as DATE query parameters, selects exactly the columns of
``GCP_SOURCE_SCHEMA``; its rows come back through the REST pages of ``jobs.getQueryResults``
(``to_arrow`` without the Storage Read API: a day of billing rows is small, and the same path runs here
and in production without the extra read-session permission). Every call retries BigQuery's transient
errors (5xx, ``rateLimitExceeded``) for at most ``retry_deadline`` seconds; what still fails becomes
``SourceUnavailable`` and the Airflow task's retries take over.
"""

from __future__ import annotations

import concurrent.futures
import logging
from datetime import date

import pyarrow as pa

from include.catalogue.cost import GcpCostSource
from include.clouds.billing.schemas import GCP_SOURCE_SCHEMA, conform, unknown_columns
from include.errors import SchemaDrift, SourceUnavailable

log = logging.getLogger(__name__)

RETRY_DEADLINE_SECONDS = 60.0  # per call: retries of transient errors, and the HTTP timeout of one request
QUERY_TIMEOUT_SECONDS = 600.0  # waiting for the query job and reading its pages

# Partition pruning. The export tables are partitioned by ingestion time (``_PARTITIONTIME``), i.e. by
# when a batch of rows was exported, not by usage: Google documents that usage is exported throughout
# the day, at varying delays, with no latency guarantee, so the usage of day D arrives on D and for days
# after it (corrections and credits too). A row is never exported before its usage starts, so there is
# a lower bound and no upper one. The bound is one day before the window, not the window's first day:
# the partition day does not follow UTC. Partitions seen in real exports hold rows exported until about
# 05:40 UTC of the next day (Pacific midnight; project-koku/nise#399 lists DATE(_PARTITIONTIME) beside
# MAX(export_time)), so usage from the first UTC hours of D that is exported within hours lands in the
# partition of D-1. The Pacific offset is at most 8 hours, so one day of slack always covers it.
PARTITION_FILTER = "_PARTITIONTIME >= TIMESTAMP(DATE_SUB(@first_day, INTERVAL 1 DAY))"
# DATE(timestamp) is the UTC day, the platform's day everywhere.
USAGE_FILTER = "DATE(usage_start_time) BETWEEN @first_day AND @last_day"


def billing_export_query(table: str, ingestion_partitioned: bool) -> str:
    """The one query: the source columns of ``table`` for the UTC days ``@first_day``..``@last_day``.

    ``_PARTITIONTIME`` exists only on ingestion-time partitioned tables (the export itself); a view or a
    copy partitioned on a column is read with the usage filter alone.
    """
    columns = ",\n  ".join(GCP_SOURCE_SCHEMA.names)
    where = f"{PARTITION_FILTER}\n  AND {USAGE_FILTER}" if ingestion_partitioned else USAGE_FILTER
    return f"SELECT\n  {columns}\nFROM `{table}`\nWHERE {where}"


def extract_gcp(
    source: GcpCostSource,
    first_day: date,
    last_day: date,
    *,
    page_size: int | None = None,
    retry_deadline: float = RETRY_DEADLINE_SECONDS,
) -> pa.Table:
    """Billing export rows whose usage starts on the UTC days ``first_day``..``last_day``, as GCP_SOURCE_SCHEMA.

    ``page_size`` caps the rows of one result page (default: BigQuery's); ``retry_deadline`` bounds the
    retries of each call.
    """
    import requests
    from google.api_core import exceptions
    from google.cloud import bigquery
    from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY, DEFAULT_RETRY

    from include.clouds.hooks.bigquery import BigQueryEndpointHook

    if first_day > last_day:
        raise ValueError(f"first_day {first_day} is after last_day {last_day}")
    hook = BigQueryEndpointHook(gcp_conn_id=source.connection, location=source.location, use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id, location=source.location)
    retry = DEFAULT_RETRY.with_timeout(retry_deadline)
    job_retry = DEFAULT_JOB_RETRY.with_timeout(retry_deadline)
    try:
        export = client.get_table(source.table, retry=retry, timeout=retry_deadline)
        source_columns = [field.name for field in export.schema]
        missing = [name for name in GCP_SOURCE_SCHEMA.names if name not in source_columns]
        if missing:
            raise SchemaDrift(f"gcp billing export {source.table} is missing column(s) {', '.join(missing)}")
        unread = unknown_columns("gcp", pa.table({name: pa.nulls(0) for name in source_columns}))
        if unread:
            # The export carries more columns than the platform reads (invoice, export_time, tags, ...),
            # and Google adds columns over time, so these are listed for the record, not warned about.
            log.info("gcp billing export %s: columns not read: %s", source.table, ", ".join(unread))
        partitioning = export.time_partitioning
        query = billing_export_query(source.table, partitioning is not None and partitioning.field is None)
        job_config = bigquery.QueryJobConfig(
            use_legacy_sql=False,
            query_parameters=[
                bigquery.ScalarQueryParameter("first_day", "DATE", first_day),
                bigquery.ScalarQueryParameter("last_day", "DATE", last_day),
            ],
        )
        job = client.query(
            query,
            job_config=job_config,
            location=source.location,
            retry=retry,
            job_retry=job_retry,
            timeout=retry_deadline,
        )
        rows = job.result(page_size=page_size, retry=retry, job_retry=job_retry, timeout=QUERY_TIMEOUT_SECONDS)
        result = rows.to_arrow(create_bqstorage_client=False)
    except (
        exceptions.RetryError,
        exceptions.ServerError,
        exceptions.TooManyRequests,
        requests.exceptions.RequestException,
        concurrent.futures.TimeoutError,
    ) as error:
        raise SourceUnavailable(
            f"gcp billing export {source.table} kept failing past the {retry_deadline:g} s retry budget: {error}"
        ) from error
    log.info("gcp billing export %s: %d rows for %s..%s", source.table, result.num_rows, first_day, last_day)
    return conform("gcp", result)
