"""Cost data in the platform's object store: FOCUS partitions by day and provider, and the daily reports.

Layout under the catalogue's ``cost.prefix`` (default ``cost``), in the bucket of ``cost_store_region``::

    cost/source/day=2026-11-23/provider=gcp/part.parquet    what the billing API returned, as extracted
    cost/focus/day=2026-11-23/provider=gcp/part.parquet     the same rows normalised to FOCUS 1.2
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

from include.clouds.objectstore import ObjectStore
from include.cost.focus import FOCUS_SCHEMA
from include.errors import ObjectNotFound

LAYERS = ("source", "focus")
REPORT_KINDS = ("html", "json")
_DAY = re.compile(r"/day=(\d{4}-\d{2}-\d{2})/")


def partition_key(prefix: str, layer: str, day: date, provider: str) -> str:
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
    return f"{prefix}/{layer}/day={day.isoformat()}/provider={provider}/part.parquet"


def report_key(prefix: str, day: date, kind: str) -> str:
    if kind not in REPORT_KINDS:
        raise ValueError(f"report kind must be one of {REPORT_KINDS}, got {kind!r}")
    return f"{prefix}/reports/day={day.isoformat()}/report.{kind}"


def write_partition(store: ObjectStore, key: str, table: pa.Table, info: dict) -> None:
    """Write one partition as a single Parquet object; ``info`` goes into the file's metadata."""
    table = table.replace_schema_metadata({"mlp_partition": json.dumps(info, sort_keys=True, default=str)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    store.put_bytes(key, buffer.getvalue(), metadata={"rows": str(table.num_rows)})


def read_partition(store: ObjectStore, key: str, schema: pa.Schema | None = None) -> tuple[pa.Table, dict] | None:
    """One partition (only ``schema``'s columns, cast to it, if given) and the ``info`` written with it, or
    ``None`` if it was never written."""
    try:
        data = store.get_bytes(key)
    except ObjectNotFound:
        return None
    table = pq.read_table(io.BytesIO(data), columns=schema.names if schema is not None else None)
    info = json.loads((table.schema.metadata or {}).get(b"mlp_partition", b"{}"))
    table = table.replace_schema_metadata(None)
    return (table.cast(schema) if schema is not None else table), info


def read_focus(
    store: ObjectStore, prefix: str, days: list[date], providers: list[str], columns: list[str] | None = None
) -> pa.Table:
    """The FOCUS partitions that exist for ``days`` x ``providers`` as one table (only ``columns``, if given)."""
    schema = pa.schema([FOCUS_SCHEMA.field(name) for name in columns]) if columns else FOCUS_SCHEMA
    tables = [schema.empty_table()]
    for day in days:
        for provider in providers:
            found = read_partition(store, partition_key(prefix, "focus", day, provider), schema)
            if found is not None:
                tables.append(found[0])
    return pa.concat_tables(tables)


def report_days(store: ObjectStore, prefix: str) -> list[date]:
    """Days that have a report, newest first."""
    days = {match.group(1) for key in store.list_keys(f"{prefix}/reports/") if (match := _DAY.search(key))}
    return sorted((date.fromisoformat(day) for day in days), reverse=True)
