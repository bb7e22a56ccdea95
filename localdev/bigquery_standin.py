"""A loopback stand-in for the BigQuery REST API that serves one query: the Cloud Billing export read.

It is a stand-in, not an emulator: no BigQuery emulator found here serves nested and repeated columns,
streaming inserts, query parameters and ``_PARTITIONTIME`` together (crucible-emulator 0.1.0a2 rejects
``queryParameters``, ``timePartitioning`` and ``insertAll``). It speaks the REST API that
``google-cloud-bigquery`` calls, so the platform's extractor runs unchanged against it:

- ``datasets.insert/get``, ``tables.insert/get`` (schemas with RECORD and REPEATED fields, kept as sent);
- ``tabledata.insertAll``: rows are checked against the table schema (an unknown field rejects the batch,
  as BigQuery does unless told to skip invalid rows) and stored in memory;
- ``jobs.insert``, ``jobs.query``, ``jobs.get`` and ``jobs.getQueryResults`` with ``maxResults``,
  ``pageToken`` and ``startIndex`` paging; rows are encoded as BigQuery encodes them (``f``/``v`` cells,
  nested records, repeated fields, timestamps as int64 microseconds when the client asks for
  ``formatOptions.useInt64Timestamp``, else as float seconds).

It does NOT run SQL. A query is answered only if it has the billing-export shape::

    SELECT col, col, ... FROM `project.dataset.table`
    WHERE [_PARTITIONTIME >= <bound> AND] DATE(usage_start_time) BETWEEN @first_day AND @last_day

with DATE parameters ``first_day`` and ``last_day``; it returns the named top-level columns of the rows
whose ``usage_start_time`` falls on those UTC days, in insertion order. A named column the table lacks
fails the job with BigQuery's ``Unrecognized name: X``; any other SQL gets a 400 saying the stand-in only
serves that query. The ``_PARTITIONTIME`` bound is accepted but not evaluated (there are no partitions),
so it cannot show a bound that is too tight. Also not done: authentication, IAM, locations, DML, load
and copy jobs, ``tabledata.list``, deletes, insertId de-duplication, the Storage Read API, persistence
(state lives in the process).

Failure knobs for tests, outside the API prefix: ``POST /_stand_in/faults`` with ``{"status": 500,
"count": 3, "path_contains": "/queries/"}`` makes the next ``count`` API requests (whose path contains
``path_contains``, if given) answer that status with BigQuery's error body (reason ``backendError`` for
5xx, ``rateLimitExceeded`` for 429); ``GET`` shows what is left, ``DELETE`` clears it.
``GET /_stand_in/requests`` lists the API requests served (method, path, query, JSON body), ``DELETE``
empties it;
``GET /_stand_in/health`` answers once the server is up.

Run: ``python -m localdev.bigquery_standin --host 127.0.0.1 --port 9050``, then point a
google_cloud_platform connection at it with ``{"project": "mlp-local", "is_anonymous": true,
"api_endpoint": "http://127.0.0.1:9050"}``. Seed it with ``seed_billing_export``.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    import pyarrow as pa

API_PREFIX = "/bigquery/v2"
ADMIN_PREFIX = "/_stand_in"
DEFAULT_PAGE_ROWS = 10_000
INSERT_BATCH_ROWS = 500  # BigQuery's advice for one insertAll request
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED"}
_REASON_STATUS = {"invalidQuery": 400, "invalid": 400, "notFound": 404, "duplicate": 409}
_TYPE_ALIASES = {"STRUCT": "RECORD", "FLOAT64": "FLOAT", "INT64": "INTEGER", "BOOL": "BOOLEAN"}

_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<columns>.+?)\s+FROM\s+`(?P<table>[^`]+)`\s+WHERE\s+(?P<where>.+?)\s*;?\s*$", re.S | re.I
)
_WHERE = re.compile(
    r"^(?:_PARTITIONTIME\s*>=\s*.+?\s+AND\s+)?"
    r"DATE\s*\(\s*usage_start_time\s*\)\s+BETWEEN\s+@first_day\s+AND\s+@last_day$",
    re.I,
)
_IDENTIFIER = re.compile(r"^`?([A-Za-z_][A-Za-z0-9_]*)`?$")
SERVED_QUERY = (
    "SELECT <columns> FROM `project.dataset.table` WHERE [_PARTITIONTIME >= <bound> AND] "
    "DATE(usage_start_time) BETWEEN @first_day AND @last_day"
)


class ApiError(Exception):
    """An error answered with BigQuery's error body."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message

    def body(self) -> dict:
        error = {"message": self.message, "domain": "global", "reason": self.reason}
        status_name = _STATUS_NAMES.get(self.status, "INTERNAL" if self.status >= 500 else "FAILED_PRECONDITION")
        return {"error": {"code": self.status, "message": self.message, "errors": [error], "status": status_name}}


class JobFailed(Exception):
    """A query job that BigQuery would accept and then fail (reason and message go to ``errorResult``)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


# --- values: JSON as inserted -> stored Python values -> f/v cells ---


def _field_type(field: dict) -> str:
    kind = field["type"].upper()
    return _TYPE_ALIASES.get(kind, kind)


def _timestamp_micros(value: Any) -> int:
    if isinstance(value, int | float):
        return round(value * 1_000_000)
    text = str(value).strip().replace(" UTC", "+00:00")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1)


def _store_scalar(value: Any, kind: str) -> Any:
    if kind == "STRING":
        return str(value)
    if kind == "FLOAT":
        return float(value)
    if kind == "INTEGER":
        return int(value)
    if kind == "BOOLEAN":
        if isinstance(value, str):
            return {"true": True, "false": False}[value.lower()]
        return bool(value)
    if kind == "TIMESTAMP":
        return _timestamp_micros(value)
    if kind == "DATE":
        return date.fromisoformat(str(value)).isoformat()
    if kind in ("NUMERIC", "BIGNUMERIC"):
        return str(Decimal(str(value)))
    return value  # DATETIME, TIME, BYTES, JSON, GEOGRAPHY...: kept as sent


def store_value(value: Any, field: dict) -> Any:
    """``value`` as sent to insertAll, checked against ``field`` and converted for storage."""
    repeated = field.get("mode", "NULLABLE").upper() == "REPEATED"
    if repeated:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError(f"field {field['name']} is repeated but was sent {type(value).__name__}")
        return [_store_one(item, field) for item in value]
    return None if value is None else _store_one(value, field)


def _store_one(value: Any, field: dict) -> Any:
    if _field_type(field) == "RECORD":
        return store_record(value, field["fields"])
    try:
        return _store_scalar(value, _field_type(field))
    except (ValueError, KeyError, ArithmeticError) as error:
        raise ValueError(f"cannot convert value to {field['type']} for field {field['name']}: {error}") from None


def store_record(value: Any, fields: list[dict]) -> dict:
    """A JSON object checked against ``fields``: an unknown key is an error, as in BigQuery."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    names = {field["name"] for field in fields}
    unknown = [key for key in value if key not in names]
    if unknown:
        raise ValueError(f"no such field: {unknown[0]}.")
    return {field["name"]: store_value(value.get(field["name"]), field) for field in fields}


def _scalar_text(value: Any, kind: str, int64_timestamps: bool) -> str:
    if kind == "TIMESTAMP":
        return str(value) if int64_timestamps else repr(value / 1_000_000)
    if kind == "BOOLEAN":
        return "true" if value else "false"
    if kind == "FLOAT":
        return repr(value)
    return str(value)


def cell(value: Any, field: dict, int64_timestamps: bool) -> dict:
    """One ``{"v": ...}`` cell as BigQuery's REST API encodes it."""
    if field.get("mode", "NULLABLE").upper() == "REPEATED":
        return {"v": [{"v": _cell_value(item, field, int64_timestamps)} for item in value or []]}
    return {"v": None if value is None else _cell_value(value, field, int64_timestamps)}


def _cell_value(value: Any, field: dict, int64_timestamps: bool) -> Any:
    if _field_type(field) == "RECORD":
        return {"f": [cell(value.get(sub["name"]), sub, int64_timestamps) for sub in field["fields"]]}
    return _scalar_text(value, _field_type(field), int64_timestamps)


# --- the one query it answers ---


def _position(sql: str, index: int) -> str:
    line = sql.count("\n", 0, index) + 1
    column = index - (sql.rfind("\n", 0, index) + 1) + 1
    return f"[{line}:{column}]"


def _not_served(detail: str) -> ApiError:
    return ApiError(400, "invalidQuery", f"The BigQuery stand-in only serves the query {SERVED_QUERY}: {detail}")


def _date_parameter(parameters: list[dict], name: str) -> date:
    for parameter in parameters:
        if parameter.get("name") == name:
            if parameter.get("parameterType", {}).get("type", "").upper() != "DATE":
                raise _not_served(f"parameter @{name} must be a DATE")
            return date.fromisoformat(parameter["parameterValue"]["value"])
    raise ApiError(400, "invalidQuery", f"Query parameter '{name}' not found")


class StandIn:
    """The stand-in's state: datasets, tables with their rows, finished jobs, faults and a request log."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.datasets: dict[tuple[str, str], dict] = {}
        self.tables: dict[tuple[str, str, str], dict] = {}
        self.rows: dict[tuple[str, str, str], list[dict]] = {}
        self.jobs: dict[tuple[str, str], dict] = {}
        self.results: dict[tuple[str, str], tuple[list[dict], list[dict]]] = {}
        self.fault: dict | None = None
        self.requests: list[dict] = []

    # faults and the request log

    def take_fault(self, path: str) -> ApiError | None:
        """The injected error for this request, if one is left for its path."""
        with self.lock:
            fault = self.fault
            if not fault or fault["count"] <= 0 or fault.get("path_contains", "") not in path:
                return None
            fault["count"] -= 1
            status = fault["status"]
            reason = fault.get("reason") or ("rateLimitExceeded" if status == 429 else "backendError")
            return ApiError(status, reason, f"Injected failure {status} ({reason}) from the BigQuery stand-in")

    # datasets and tables

    def insert_dataset(self, project: str, body: dict) -> dict:
        dataset_id = body["datasetReference"]["datasetId"]
        with self.lock:
            if (project, dataset_id) in self.datasets:
                raise ApiError(409, "duplicate", f"Already Exists: Dataset {project}:{dataset_id}")
            resource = {
                **body,
                "kind": "bigquery#dataset",
                "id": f"{project}:{dataset_id}",
                "datasetReference": {"projectId": project, "datasetId": dataset_id},
                "location": body.get("location") or "US",
                "creationTime": str(int(time.time() * 1000)),
            }
            self.datasets[project, dataset_id] = resource
            return resource

    def dataset(self, project: str, dataset_id: str) -> dict:
        with self.lock:
            if (project, dataset_id) not in self.datasets:
                raise ApiError(404, "notFound", f"Not found: Dataset {project}:{dataset_id}")
            return self.datasets[project, dataset_id]

    def insert_table(self, project: str, dataset_id: str, body: dict) -> dict:
        dataset = self.dataset(project, dataset_id)
        table_id = body["tableReference"]["tableId"]
        key = (project, dataset_id, table_id)
        with self.lock:
            if key in self.tables:
                raise ApiError(409, "duplicate", f"Already Exists: Table {project}:{dataset_id}.{table_id}")
            now = str(int(time.time() * 1000))
            self.tables[key] = {
                **body,
                "kind": "bigquery#table",
                "id": f"{project}:{dataset_id}.{table_id}",
                "tableReference": {"projectId": project, "datasetId": dataset_id, "tableId": table_id},
                "schema": body.get("schema", {"fields": []}),
                "type": "TABLE",
                "location": dataset["location"],
                "creationTime": now,
                "lastModifiedTime": now,
            }
            self.rows[key] = []
            return self._table_resource(key)

    def _table_resource(self, key: tuple[str, str, str]) -> dict:
        return {**self.tables[key], "numRows": str(len(self.rows[key])), "numBytes": "0"}

    def table(self, project: str, dataset_id: str, table_id: str) -> dict:
        with self.lock:
            if (project, dataset_id, table_id) not in self.tables:
                raise ApiError(404, "notFound", f"Not found: Table {project}:{dataset_id}.{table_id}")
            return self._table_resource((project, dataset_id, table_id))

    def insert_all(self, project: str, dataset_id: str, table_id: str, body: dict) -> dict:
        fields = self.table(project, dataset_id, table_id)["schema"]["fields"]
        stored, errors = [], []
        for index, row in enumerate(body.get("rows", [])):
            try:
                stored.append(store_record(row.get("json", {}), fields))
            except ValueError as error:
                errors.append({"index": index, "errors": [{"reason": "invalid", "message": str(error)}]})
        if errors and not body.get("skipInvalidRows"):
            failed = {error["index"] for error in errors}
            stopped = [
                {"index": index, "errors": [{"reason": "stopped", "message": ""}]}
                for index in range(len(body.get("rows", [])))
                if index not in failed
            ]
            return {"kind": "bigquery#tableDataInsertAllResponse", "insertErrors": errors + stopped}
        with self.lock:
            self.rows[project, dataset_id, table_id].extend(stored)
        response: dict = {"kind": "bigquery#tableDataInsertAllResponse"}
        if errors:
            response["insertErrors"] = errors
        return response

    # the billing-export query

    def _answer(self, sql: str, parameters: list[dict]) -> tuple[list[dict], list[dict]]:
        """The schema and rows of the billing-export query, or an error saying why not."""
        match = _QUERY.match(sql)
        if not match:
            raise _not_served("the query does not have that shape")
        if not _WHERE.match(" ".join(match["where"].split())):
            raise _not_served(f"unsupported WHERE clause {' '.join(match['where'].split())!r}")
        names = []
        for part in match["columns"].split(","):
            identifier = _IDENTIFIER.match(part.strip())
            if not identifier:
                raise _not_served(f"select item {part.strip()!r} is not a plain column name")
            names.append(identifier[1])
        first_day = _date_parameter(parameters, "first_day")
        last_day = _date_parameter(parameters, "last_day")
        parts = match["table"].split(".")
        if len(parts) != 3:
            raise _not_served(f"table {match['table']!r} is not project.dataset.table")
        key = (parts[0], parts[1], parts[2])
        with self.lock:
            if key not in self.tables:
                raise JobFailed("notFound", f"Not found: Table {parts[0]}:{parts[1]}.{parts[2]} was not found")
            fields = {field["name"]: field for field in self.tables[key]["schema"]["fields"]}
            rows = list(self.rows[key])
        for name in [*names, "usage_start_time"]:
            if name not in fields:
                start = match.start("columns") if name in names else match.start("where")
                index = start + re.search(rf"\b{name}\b", sql[start:]).start()
                raise JobFailed("invalidQuery", f"Unrecognized name: {name} at {_position(sql, index)}")
        selected = [copy.deepcopy(fields[name]) for name in names]

        def usage_day(row: dict) -> date | None:
            micros = row["usage_start_time"]
            return None if micros is None else (EPOCH + timedelta(microseconds=micros)).date()

        window = [row for row in rows if (day := usage_day(row)) is not None and first_day <= day <= last_day]
        return selected, [{name: row[name] for name in names} for row in window]

    def run_query(self, project: str, configuration: dict, job_id: str, location: str) -> dict:
        """Run a query job to completion and return its resource (failed jobs carry ``errorResult``)."""
        query = configuration.get("query", {})
        if query.get("useLegacySql", True) is not False:
            raise _not_served("legacy SQL is not served; set useLegacySql to false")
        now = str(int(time.time() * 1000))
        status: dict = {"state": "DONE"}
        try:
            schema, rows = self._answer(query.get("query", ""), query.get("queryParameters", []))
        except JobFailed as failure:
            error = {"reason": failure.reason, "location": "query", "message": failure.message}
            status |= {"errorResult": error, "errors": [error]}
            schema, rows = [], []
        resource = {
            "kind": "bigquery#job",
            "id": f"{project}:{location}.{job_id}",
            "jobReference": {"projectId": project, "jobId": job_id, "location": location},
            "configuration": {**configuration, "jobType": "QUERY"},
            "status": status,
            "statistics": {
                "creationTime": now,
                "startTime": now,
                "endTime": now,
                "totalBytesProcessed": "0",
                "query": {"statementType": "SELECT", "totalBytesProcessed": "0", "cacheHit": False},
            },
        }
        with self.lock:
            self.jobs[project, job_id] = resource
            self.results[project, job_id] = (schema, rows)
        return resource

    def job(self, project: str, job_id: str) -> dict:
        with self.lock:
            if (project, job_id) not in self.jobs:
                raise ApiError(404, "notFound", f"Not found: Job {project}:{job_id}")
            return self.jobs[project, job_id]

    def query_results(self, project: str, job_id: str, params: dict[str, str]) -> dict:
        """A page of a finished job's rows, as ``jobs.getQueryResults`` answers."""
        job = self.job(project, job_id)
        error = job["status"].get("errorResult")
        if error:
            raise ApiError(_REASON_STATUS.get(error["reason"], 400), error["reason"], error["message"])
        with self.lock:
            schema, rows = self.results[project, job_id]
        start = int(params.get("pageToken") or params.get("startIndex") or 0)
        page_rows = int(params["maxResults"]) if "maxResults" in params else DEFAULT_PAGE_ROWS
        int64_timestamps = params.get("formatOptions.useInt64Timestamp", "").lower() == "true"
        response = {
            "kind": "bigquery#getQueryResultsResponse",
            "jobReference": job["jobReference"],
            "schema": {"fields": schema},
            "totalRows": str(len(rows)),
            "jobComplete": True,
            "cacheHit": False,
            "totalBytesProcessed": "0",
        }
        if page_rows > 0:
            page = rows[start : start + page_rows]
            response["rows"] = [{"f": [cell(row[f["name"]], f, int64_timestamps) for f in schema]} for row in page]
            if start + page_rows < len(rows):
                response["pageToken"] = str(start + page_rows)
        return response


_ROUTES = [
    ("POST", re.compile(r"^/projects/([^/]+)/datasets$"), "insert_dataset"),
    ("GET", re.compile(r"^/projects/([^/]+)/datasets/([^/]+)$"), "get_dataset"),
    ("POST", re.compile(r"^/projects/([^/]+)/datasets/([^/]+)/tables$"), "insert_table"),
    ("GET", re.compile(r"^/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)$"), "get_table"),
    ("POST", re.compile(r"^/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)/insertAll$"), "insert_all"),
    ("POST", re.compile(r"^/projects/([^/]+)/jobs$"), "insert_job"),
    ("GET", re.compile(r"^/projects/([^/]+)/jobs/([^/]+)$"), "get_job"),
    ("POST", re.compile(r"^/projects/([^/]+)/queries$"), "query"),
    ("GET", re.compile(r"^/projects/([^/]+)/queries/([^/]+)$"), "get_query_results"),
]


class Handler(BaseHTTPRequestHandler):
    """Routes BigQuery REST calls to ``StandIn`` and the ``/_stand_in`` knobs to their state."""

    protocol_version = "HTTP/1.1"
    server: StandInServer

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        params = {name: values[-1] for name, values in parse_qs(url.query).items()}
        try:
            body = json.loads(raw) if raw else {}
            if url.path.startswith(ADMIN_PREFIX):
                self._reply(200, self._admin(method, url.path[len(ADMIN_PREFIX) :], body))
                return
            if not url.path.startswith(API_PREFIX):
                raise ApiError(404, "notFound", f"Not found: {url.path}")
            path = url.path[len(API_PREFIX) :]
            standin = self.server.standin
            with standin.lock:
                standin.requests.append({"method": method, "path": path, "query": params, "body": body})
            fault = standin.take_fault(path)
            if fault:
                raise fault
            self._reply(200, self._api(method, path, params, body))
        except ApiError as error:
            self._reply(error.status, error.body())
        except (ValueError, KeyError, TypeError) as error:
            self._reply(400, ApiError(400, "invalid", f"Invalid request: {error}").body())

    def _api(self, method: str, path: str, params: dict[str, str], body: dict) -> dict:
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                return getattr(self, f"_{name}")(*match.groups(), params=params, body=body)
        raise ApiError(501, "notImplemented", f"The BigQuery stand-in does not implement {method} {path}")

    def _insert_dataset(self, project, *, params, body):
        return self.server.standin.insert_dataset(project, body)

    def _get_dataset(self, project, dataset_id, *, params, body):
        return self.server.standin.dataset(project, dataset_id)

    def _insert_table(self, project, dataset_id, *, params, body):
        return self.server.standin.insert_table(project, dataset_id, body)

    def _get_table(self, project, dataset_id, table_id, *, params, body):
        return self.server.standin.table(project, dataset_id, table_id)

    def _insert_all(self, project, dataset_id, table_id, *, params, body):
        return self.server.standin.insert_all(project, dataset_id, table_id, body)

    def _insert_job(self, project, *, params, body):
        reference = body.get("jobReference", {})
        job_id = reference.get("jobId") or str(uuid.uuid4())
        if "query" not in body.get("configuration", {}):
            raise ApiError(501, "notImplemented", "The BigQuery stand-in runs query jobs only")
        return self.server.standin.run_query(project, body["configuration"], job_id, reference.get("location", "US"))

    def _get_job(self, project, job_id, *, params, body):
        return self.server.standin.job(project, job_id)

    def _query(self, project, *, params, body):
        """``jobs.query``: run the query as a job and answer its first page."""
        standin = self.server.standin
        configuration = {
            "query": {
                key: body[key] for key in ("query", "useLegacySql", "parameterMode", "queryParameters") if key in body
            }
        }
        job = standin.run_query(project, configuration, str(uuid.uuid4()), body.get("location", "US"))
        page_params = {"formatOptions.useInt64Timestamp": str(body.get("formatOptions", {}).get("useInt64Timestamp"))}
        if "maxResults" in body:
            page_params["maxResults"] = str(body["maxResults"])
        results = standin.query_results(project, job["jobReference"]["jobId"], page_params)
        return {**results, "kind": "bigquery#queryResponse"}

    def _get_query_results(self, project, job_id, *, params, body):
        return self.server.standin.query_results(project, job_id, params)

    def _admin(self, method: str, path: str, body: dict) -> dict:
        standin = self.server.standin
        with standin.lock:
            if path == "/health" and method == "GET":
                return {"ok": True}
            if path == "/faults":
                if method == "POST":
                    if not isinstance(body.get("status"), int) or not isinstance(body.get("count"), int):
                        raise ApiError(400, "invalid", 'faults need {"status": <int>, "count": <int>}')
                    standin.fault = dict(body)
                elif method == "DELETE":
                    standin.fault = None
                return {"fault": standin.fault}
            if path == "/requests":
                if method == "DELETE":
                    standin.requests.clear()
                return {"requests": list(standin.requests)}
        raise ApiError(404, "notFound", f"No stand-in control at {method} {ADMIN_PREFIX}{path}")

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)


class StandInServer(ThreadingHTTPServer):
    """The HTTP server, holding one ``StandIn``."""

    daemon_threads = True

    def __init__(self, host: str, port: int, quiet: bool = False):
        self.standin = StandIn()
        self.quiet = quiet
        super().__init__((host, port), Handler)


# --- seeding, through the real client ---


def bigquery_schema(schema: pa.Schema) -> list:
    """BigQuery ``SchemaField``s for an Arrow schema (lists become REPEATED, structs RECORD)."""
    import pyarrow as pa
    from google.cloud.bigquery import SchemaField

    scalar_types = {
        pa.string(): "STRING",
        pa.float64(): "FLOAT",
        pa.int64(): "INTEGER",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
    }

    def field(name: str, arrow_type: pa.DataType) -> SchemaField:
        mode = "NULLABLE"
        if pa.types.is_list(arrow_type):
            mode, arrow_type = "REPEATED", arrow_type.value_type
        if pa.types.is_struct(arrow_type):
            return SchemaField(name, "RECORD", mode=mode, fields=[field(sub.name, sub.type) for sub in arrow_type])
        if pa.types.is_timestamp(arrow_type):
            return SchemaField(name, "TIMESTAMP", mode=mode)
        if arrow_type not in scalar_types:
            raise ValueError(f"column {name} has Arrow type {arrow_type}, which the seeder does not map")
        return SchemaField(name, scalar_types[arrow_type], mode=mode)

    return [field(arrow_field.name, arrow_field.type) for arrow_field in schema]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def seed_billing_export(endpoint: str, table_id: str, rows: pa.Table) -> None:
    """Create ``table_id`` ("project.dataset.table") at ``endpoint`` if missing, then stream ``rows`` into it.

    The dataset and table are created as the billing export's are (location US, ingestion-time DAY
    partitions), with the BigQuery schema of ``rows``; the rows go in through ``insert_rows_json``
    (``tabledata.insertAll``) in batches of 500. Works against the stand-in or any BigQuery endpoint
    that accepts anonymous credentials.
    """
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    project, dataset_id, _ = table_id.split(".")
    client = bigquery.Client(
        project=project, credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=endpoint)
    )
    dataset = bigquery.Dataset(f"{project}.{dataset_id}")
    dataset.location = "US"
    client.create_dataset(dataset, exists_ok=True)
    table = bigquery.Table(table_id, schema=bigquery_schema(rows.schema))
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY)
    client.create_table(table, exists_ok=True)
    json_rows = [_json_value(row) for row in rows.to_pylist()]
    for start in range(0, len(json_rows), INSERT_BATCH_ROWS):
        errors = client.insert_rows_json(table_id, json_rows[start : start + INSERT_BATCH_ROWS])
        if errors:
            raise RuntimeError(f"insertAll into {table_id} rejected rows from {start}: {errors[:3]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (default); 0.0.0.0 only inside a container")
    parser.add_argument("--port", type=int, default=9050)
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    try:
        server = StandInServer(args.host, args.port, quiet=args.quiet)
    except ValueError as error:
        parser.error(str(error))
    print(f"BigQuery stand-in serving http://{args.host}:{args.port}{API_PREFIX}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
