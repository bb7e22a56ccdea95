"""Cost data in the platform's object store: FOCUS partitions by day and provider, and the daily reports.

Layout under the catalogue's ``cost.prefix`` (default ``cost``), in the bucket of ``cost_store_region``::

    cost/focus/day=2026-11-23/provider=gcp/focus.parquet
    cost/reports/day=2026-11-23/report.html
    cost/reports/day=2026-11-23/report.json

Each partition is one object written with one PUT, which S3, GCS and Azure Blob make visible whole or not
at all: a failed run leaves the previous partition as it was, and a rerun replaces it (idempotent).
"""

from __future__ import annotations

import io
import json
import re
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from include.cost.focus import FOCUS_SCHEMA
from include.objectstore import ObjectNotFound, ObjectStore

REPORT_KINDS = ("html", "json")
_DAY = re.compile(r"/day=(\d{4}-\d{2}-\d{2})/")


def focus_key(prefix: str, day: date, provider: str) -> str:
    return f"{prefix}/focus/day={day.isoformat()}/provider={provider}/focus.parquet"


def report_key(prefix: str, day: date, kind: str) -> str:
    if kind not in REPORT_KINDS:
        raise ValueError(f"report kind must be one of {REPORT_KINDS}, got {kind!r}")
    return f"{prefix}/reports/day={day.isoformat()}/report.{kind}"


def write_partition(store: ObjectStore, prefix: str, day: date, provider: str, table: pa.Table, info: dict) -> str:
    """Write one day of one provider as a single Parquet object; ``info`` goes into the file's metadata."""
    table = table.cast(FOCUS_SCHEMA).replace_schema_metadata({"mlp_partition": json.dumps(info, sort_keys=True)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    key = focus_key(prefix, day, provider)
    store.put_bytes(key, buffer.getvalue(), metadata={"rows": str(table.num_rows)})
    return key


def read_partition(store: ObjectStore, prefix: str, day: date, provider: str) -> tuple[pa.Table, dict] | None:
    """One partition and the ``info`` written with it, or ``None`` if it was never written."""
    try:
        data = store.get_bytes(focus_key(prefix, day, provider))
    except ObjectNotFound:
        return None
    table = pq.read_table(io.BytesIO(data))
    info = json.loads((table.schema.metadata or {}).get(b"mlp_partition", b"{}"))
    return table.replace_schema_metadata(None), info


def read_focus(store: ObjectStore, prefix: str, days: list[date], providers: list[str]) -> pa.Table:
    """All partitions that exist for ``days`` x ``providers``, as one FOCUS table."""
    tables = [FOCUS_SCHEMA.empty_table()]
    for day in days:
        for provider in providers:
            found = read_partition(store, prefix, day, provider)
            if found is not None:
                tables.append(found[0])
    return pa.concat_tables(tables)


def report_days(store: ObjectStore, prefix: str) -> list[date]:
    """Days that have a report, newest first."""
    days = {match.group(1) for key in store.list_keys(f"{prefix}/reports/") if (match := _DAY.search(key))}
    return sorted((date.fromisoformat(day) for day in days), reverse=True)
