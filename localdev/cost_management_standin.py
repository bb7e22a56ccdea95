"""A loopback stand-in for Azure Cost Management ``Query`` and the Entra ID token endpoint it needs.

No emulator of Cost Management exists, so this serves the part the platform calls, over TLS on 127.0.0.1
(azure-identity only accepts an https authority), with a self-signed certificate it writes to ``--tls-dir``:

- ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and ``POST /{tenant}/oauth2/v2.0/token``: the
  client-credentials grant for the scope ``https://management.azure.com/.default``; any client id and non-empty
  secret get an opaque bearer token (secrets are not checked, nor logged).
- ``POST /subscriptions/{id}[/resourceGroups/{rg}]/providers/Microsoft.CostManagement/query?api-version=...``:
  the seeded rows of the requested type (ActualCost or AmortizedCost, Usage meaning ActualCost) inside
  ``timePeriod``, Daily, summed by up to two groupings of ServiceName and ResourceLocation and by currency,
  answered as the service does (``properties.columns``/``rows``, UsageDate as yyyymmdd, ``nextLink`` with a
  ``$skiptoken`` per page). It wants a bearer token it issued (else 401), and answers other bodies with 400.

Faults, set through ``POST /_stand_in/faults`` (see ``Faults``): page size, a 429 with Azure's retry-after headers
on every Nth query or the next N, the next N queries failing with any status and Azure error body, columns left
out, added or reordered. ``POST /_stand_in/rows`` seeds rows, ``GET /_stand_in/requests`` lists the API calls
received, ``POST /_stand_in/reset`` forgets rows, faults and calls.

What it does not do: filters, other dimensions, tags, other granularities or timeframes, Monthly limits, the
31-day truncation of Daily windows, per-scope data (every subscription sees the same rows), token expiry or
signature, role checks.

Run: ``python -m localdev.cost_management_standin --host 127.0.0.1 --port 8450 [--tls-dir DIR]``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import ssl
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

if TYPE_CHECKING:
    import pyarrow as pa

REPO_ROOT = Path(__file__).resolve().parents[1]
ARM_TOKEN_SCOPE = "https://management.azure.com/.default"  # noqa: S105 - an OAuth scope, not a password
LOCAL_TENANT_ID = "00000000-0000-4000-8000-000000000001"
LOCAL_CLIENT_ID = "00000000-0000-4000-8000-000000000002"
LOCAL_CLIENT_SECRET = "any-secret-the-stand-in-does-not-check"  # noqa: S105 - not a secret: nothing checks it
COST_TYPES = {"ActualCost": "actual_cost", "Usage": "actual_cost", "AmortizedCost": "amortized_cost"}
DIMENSIONS = {"ServiceName": "service_name", "ResourceLocation": "resource_location"}
RETRY_AFTER_HEADERS = {
    "qpu": "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after",
    "entity": "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after",
    "tenant": "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after",
    "generic": "Retry-After",
}
QUERY_PATH = re.compile(
    r"^(/subscriptions/[^/]+(?:/resourceGroups/[^/]+)?)/providers/Microsoft\.CostManagement/query$", re.IGNORECASE
)
TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
DISCOVERY_PATH = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$")


@dataclass
class Faults:
    """How the Query API misbehaves; every field may be set through ``POST /_stand_in/faults``."""

    page_size: int = 1000  # rows per page before a nextLink
    throttle_every: int = 0  # every Nth query answers 429 (0: never)
    throttle_next: int = 0  # the next N queries answer 429
    # seconds sent with each 429, by RETRY_AFTER_HEADERS key (a key left out: that header is not sent)
    retry_after: dict[str, float] = field(default_factory=lambda: {"qpu": 1, "entity": 1, "tenant": 1})
    fail_next: int = 0  # the next N queries answer fail_status with Azure's error body
    fail_status: int = 503
    fail_code: str = "ServiceUnavailable"
    fail_message: str = "The service is temporarily unavailable."
    drop_columns: list[str] = field(default_factory=list)  # left out of columns and rows
    extra_columns: list[str] = field(default_factory=list)  # added as String columns holding ""
    column_order: list[str] = field(default_factory=list)  # these columns first, in this order


class AzureError(Exception):
    """An answer in Azure's error shape: ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class StandInState:
    """Seeded rows, faults, issued tokens and the log of API calls, shared by the request threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.faults = Faults()
        self.tokens: set[str] = set()
        self.calls: list[dict[str, Any]] = []
        self.query_count = 0

    def query_fault(self) -> AzureError | None:
        """The fault the next query meets, if any (counts the query)."""
        faults = self.faults
        self.query_count += 1
        if faults.fail_next > 0:
            faults.fail_next -= 1
            return AzureError(faults.fail_status, faults.fail_code, faults.fail_message)
        throttled = faults.throttle_next > 0 or (
            faults.throttle_every and self.query_count % faults.throttle_every == 0
        )
        if not throttled:
            return None
        faults.throttle_next = max(0, faults.throttle_next - 1)
        headers = {RETRY_AFTER_HEADERS[name]: f"{seconds:g}" for name, seconds in faults.retry_after.items()}
        return AzureError(429, "429", "Too many requests. Please retry.", headers)


def _parse_day(text: str, what: str) -> dt.date:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except (AttributeError, ValueError):
        raise AzureError(400, "BadRequest", f"Invalid {what} '{text}'.") from None


def answer_query(state: StandInState, scope: str, body: dict, skip: int, base_url: str, api_version: str) -> dict:
    """The Query API answer for ``body`` from the seeded rows, starting at row ``skip``.

    A row whose cost of the requested type is None is not in that type's answer.
    """
    cost_column = COST_TYPES.get(body.get("type", ""))
    if cost_column is None:
        raise AzureError(400, "BadRequest", f"Invalid query type '{body.get('type')}'.")
    if body.get("timeframe") != "Custom":
        raise AzureError(400, "BadRequest", "The stand-in serves timeframe Custom only.")
    period = body.get("timePeriod") or {}
    first, last = _parse_day(period.get("from"), "timePeriod.from"), _parse_day(period.get("to"), "timePeriod.to")
    dataset = body.get("dataset") or {}
    if dataset.get("granularity") != "Daily":
        raise AzureError(400, "BadRequest", "The stand-in serves granularity Daily only.")
    aggregations = list((dataset.get("aggregation") or {}).values())
    if len(aggregations) != 1 or aggregations[0] != {"name": "Cost", "function": "Sum"}:
        raise AzureError(400, "BadRequest", "The stand-in serves one aggregation: Sum of Cost.")
    grouping = [group.get("name") for group in dataset.get("grouping") or []]
    if len(grouping) > 2:
        raise AzureError(400, "BadRequest", "Invalid grouping: a query may have at most 2 groupings.")
    unknown = [name for name in grouping if name not in DIMENSIONS]
    if unknown:
        raise AzureError(400, "BadRequest", f"Invalid dimension(s) {', '.join(map(str, unknown))} for this scope.")

    totals: dict[tuple, float] = defaultdict(float)
    for row in state.rows:
        day = dt.date.fromisoformat(row["usage_date"])
        if first <= day <= last and row[cost_column] is not None:
            key = (int(day.strftime("%Y%m%d")), *(row[DIMENSIONS[name]] for name in grouping), row["currency"])
            totals[key] += float(row[cost_column])
    faults = state.faults
    names = ["Cost", "UsageDate", *grouping, "Currency"]
    rows = [[cost, *key] for key, cost in sorted(totals.items())]
    names, rows = _apply_column_faults(faults, names, rows)
    page = rows[skip : skip + faults.page_size]
    next_skip = skip + faults.page_size
    next_link = None
    if next_skip < len(rows):
        query_string = f"api-version={quote(api_version)}"
        token = quote(base64.b64encode(str(next_skip).encode()).decode())
        next_link = f"{base_url}{scope}/providers/Microsoft.CostManagement/query?{query_string}&$skiptoken={token}"
    types = {"Cost": "Number", "UsageDate": "Number"}
    query_id = str(uuid.uuid4())
    return {
        "id": f"{scope}/providers/Microsoft.CostManagement/query/{query_id}",
        "name": query_id,
        "type": "Microsoft.CostManagement/query",
        "location": None,
        "sku": None,
        "eTag": None,
        "tags": None,
        "properties": {
            "nextLink": next_link,
            "columns": [{"name": name, "type": types.get(name, "String")} for name in names],
            "rows": page,
        },
    }


def _apply_column_faults(faults: Faults, names: list[str], rows: list[list]) -> tuple[list[str], list[list]]:
    """Columns dropped, added and reordered as ``faults`` say, the rows following their columns."""
    kept = [name for name in names if name not in faults.drop_columns] + list(faults.extra_columns)
    order = [name for name in faults.column_order if name in kept]
    final = order + [name for name in kept if name not in order]
    records = [dict(zip(names, row, strict=True)) for row in rows]
    return final, [[record.get(name, "") for name in final] for record in records]


def _skip_from(query: dict[str, list[str]]) -> int:
    token = query.get("$skiptoken", [None])[0]
    if token is None:
        return 0
    try:
        return int(base64.b64decode(token).decode())
    except ValueError:
        raise AzureError(400, "BadRequest", f"Invalid $skiptoken '{token}'.") from None


class StandInHandler(BaseHTTPRequestHandler):
    """Routes the API, the token endpoints and the stand-in's admin endpoints."""

    server: StandInServer
    protocol_version = "HTTP/1.1"

    def setup(self):
        self.request.do_handshake()  # here, in the request's thread, not in the accepting one
        super().setup()

    def log_message(self, format, *args):
        return  # the request log at /_stand_in/requests replaces the access log

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"https://{host}:{port}"

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json_body(self) -> Any:
        try:
            return json.loads(self._body() or b"null")
        except ValueError:
            raise AzureError(400, "BadRequest", "The request body is not JSON.") from None

    def do_GET(self):
        url = urlsplit(self.path)
        state = self.server.state
        if url.path == "/_stand_in/requests":
            with state.lock:
                return self._send(200, list(state.calls))
        if url.path == "/_stand_in/faults":
            with state.lock:
                return self._send(200, asdict(state.faults))
        match = DISCOVERY_PATH.match(url.path)
        if match:
            tenant_url = f"{self.base_url}/{match.group(1)}"
            self._log_call("discovery", url.path, 200)
            return self._send(
                200,
                {
                    "issuer": f"{tenant_url}/v2.0",
                    "authorization_endpoint": f"{tenant_url}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{tenant_url}/oauth2/v2.0/token",
                    "token_endpoint_auth_methods_supported": ["client_secret_post"],
                    "grant_types_supported": ["client_credentials"],
                },
            )
        self._send(404, {"error": {"code": "NotFound", "message": f"No route for GET {url.path}."}})

    def do_POST(self):
        url = urlsplit(self.path)
        try:
            if url.path.startswith("/_stand_in/"):
                return self._admin(url.path)
            match = TOKEN_PATH.match(url.path)
            if match:
                return self._token(url.path)
            match = QUERY_PATH.match(url.path)
            if match:
                return self._query(match.group(1), url.path, parse_qs(url.query))
            raise AzureError(404, "NotFound", f"No route for POST {url.path}.")
        except AzureError as error:
            self._send(error.status, {"error": {"code": error.code, "message": error.message}}, error.headers)

    def _admin(self, path: str) -> None:
        state = self.server.state
        payload = self._json_body()
        with state.lock:
            if path == "/_stand_in/rows":
                state.rows.extend(_seed_row(row) for row in payload)
                return self._send(201, {"rows": len(state.rows)})
            if path == "/_stand_in/faults":
                try:
                    state.faults = Faults(**{**asdict(state.faults), **payload})
                except TypeError as error:
                    raise AzureError(400, "BadRequest", str(error)) from None
                return self._send(200, asdict(state.faults))
            if path == "/_stand_in/reset":
                state.reset()
                return self._send(200, {})
        raise AzureError(404, "NotFound", f"No stand-in route {path}.")

    def _token(self, path: str) -> None:
        form = {name: values[0] for name, values in parse_qs(self._body().decode()).items()}
        state = self.server.state
        problem = None
        if form.get("grant_type") != "client_credentials":
            problem = "unsupported_grant_type", "The stand-in grants client_credentials only."
        elif not form.get("client_id") or not form.get("client_secret"):
            problem = "invalid_client", "client_id and client_secret are required."
        elif ARM_TOKEN_SCOPE not in form.get("scope", "").split():
            problem = "invalid_scope", f"The stand-in issues tokens for {ARM_TOKEN_SCOPE} only."
        with state.lock:
            self._log_call("token", path, 400 if problem else 200, client_id=form.get("client_id"))
            if problem:
                return self._send(400, {"error": problem[0], "error_description": problem[1]})
            token = secrets.token_urlsafe(32)
            state.tokens.add(token)
        self._send(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

    def _query(self, scope: str, path: str, query: dict[str, list[str]]) -> None:
        state = self.server.state
        body = self._json_body()
        skip = _skip_from(query)
        bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        kind = body.get("type") if isinstance(body, dict) else None
        with state.lock:
            try:
                if not query.get("api-version"):
                    raise AzureError(400, "MissingApiVersionParameter", "The api-version query parameter is required.")
                if bearer not in state.tokens:
                    raise AzureError(401, "AuthenticationFailed", "Authentication failed: no valid bearer token.")
                fault = state.query_fault()
                if fault:
                    raise fault
                if not isinstance(body, dict):
                    raise AzureError(400, "BadRequest", "The query definition must be a JSON object.")
                answer = answer_query(state, scope, body, skip, self.base_url, query["api-version"][0])
            except AzureError as error:
                self._log_call("query", path, error.status, type=kind, skip=skip)
                raise
            self._log_call("query", path, 200, type=kind, skip=skip, rows=len(answer["properties"]["rows"]))
        self._send(200, answer)

    def _log_call(self, kind: str, path: str, status: int, **details: Any) -> None:
        self.server.state.calls.append({"at": time.time(), "kind": kind, "path": path, "status": status, **details})


def _seed_row(row: dict[str, Any]) -> dict[str, Any]:
    usage_date = row["usage_date"]
    return {
        "usage_date": usage_date if isinstance(usage_date, str) else usage_date.isoformat(),
        "service_name": str(row["service_name"]),
        "resource_location": str(row["resource_location"]),
        "currency": str(row["currency"]),
        "actual_cost": None if row["actual_cost"] is None else float(row["actual_cost"]),
        "amortized_cost": None if row["amortized_cost"] is None else float(row["amortized_cost"]),
    }


class StandInServer(ThreadingHTTPServer):
    """The stand-in over TLS; each connection's handshake runs in its own thread."""

    daemon_threads = True

    def __init__(self, host: str, port: int, tls: ssl.SSLContext):
        super().__init__((host, port), StandInHandler)
        self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.state = StandInState()

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError | ConnectionError):  # e.g. a client that does not trust the certificate
            print(f"connection from {client_address[0]}:{client_address[1]} failed: {error}", file=sys.stderr)
        else:
            super().handle_error(request, client_address)


def ensure_certificate(tls_dir: Path, hostnames: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """``cert.pem`` and ``key.pem`` in ``tls_dir``: a self-signed certificate for 127.0.0.1, localhost and
    ``hostnames`` (a container's service name), made once."""
    cert_path, key_path = tls_dir / "cert.pem", tls_dir / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Azure Cost Management stand-in (127.0.0.1)")])
    now = dt.datetime.now(dt.UTC)
    public_key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    *(x509.DNSName(name) for name in ("localhost", *hostnames)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(public_key_id, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(public_key_id), critical=False)
        .sign(key, hashes.SHA256())
    )
    tls_dir.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def local_connection(endpoint: str, ca_bundle: str | Path) -> dict[str, Any]:
    """The azure connection (as for ``AIRFLOW_CONN_*``) that points the Cost Management extractor here."""
    return {
        "conn_type": "azure",
        "login": LOCAL_CLIENT_ID,
        "password": LOCAL_CLIENT_SECRET,
        "extra": {
            "tenantId": LOCAL_TENANT_ID,
            "management_endpoint": endpoint,
            "authority_host": endpoint,
            "disable_instance_discovery": True,
            "ca_bundle": str(ca_bundle),
        },
    }


def _admin_call(endpoint: str, ca_bundle: str | Path, method: str, path: str, payload: Any = None) -> Any:
    request = urllib.request.Request(
        f"{endpoint.rstrip('/')}{path}",
        data=None if payload is None else json.dumps(payload).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(ca_bundle))
    with urllib.request.urlopen(request, timeout=10, context=context) as answer:
        return json.loads(answer.read() or b"null")


def seed_cost_rows(endpoint: str, rows: pa.Table, ca_bundle: str | Path) -> int:
    """Add ``rows`` (AZURE_SOURCE_SCHEMA's columns; subscription_id is not needed) to the stand-in's data.

    A null ``actual_cost`` or ``amortized_cost`` leaves the row out of that query type's answers.
    Returns how many rows the stand-in holds now.
    """
    seeded = [_seed_row(row) for row in rows.to_pylist()]
    return _admin_call(endpoint, ca_bundle, "POST", "/_stand_in/rows", seeded)["rows"]


def set_faults(endpoint: str, ca_bundle: str | Path, **faults: Any) -> dict[str, Any]:
    """Change the stand-in's ``Faults`` (fields not given keep their value); returns them all."""
    return _admin_call(endpoint, ca_bundle, "POST", "/_stand_in/faults", faults)


def recorded_calls(endpoint: str, ca_bundle: str | Path) -> list[dict[str, Any]]:
    """The API calls the stand-in received: {at (epoch s), kind, path, status, ...}, oldest first."""
    return _admin_call(endpoint, ca_bundle, "GET", "/_stand_in/requests")


def reset_stand_in(endpoint: str, ca_bundle: str | Path) -> None:
    """Forget rows, faults, tokens and recorded calls."""
    _admin_call(endpoint, ca_bundle, "POST", "/_stand_in/reset", {})


def default_tls_dir() -> Path:
    """Where the certificate lives unless ``--tls-dir`` says: beside the rest of localdev's state."""
    return Path(os.environ.get("MLP_STATE_DIR") or REPO_ROOT / ".local") / "cost-management"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (default); 0.0.0.0 only inside a container")
    parser.add_argument("--tls-hostname", action="append", default=[], help="a further name the certificate covers")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--tls-dir",
        type=Path,
        default=None,
        help="certificate directory (default: $MLP_STATE_DIR/cost-management, else .local/cost-management)",
    )
    args = parser.parse_args(argv)
    cert_path, key_path = ensure_certificate((args.tls_dir or default_tls_dir()).resolve(), tuple(args.tls_hostname))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_path, key_path)
    server = StandInServer(args.host, args.port, tls)
    print(f"Azure Cost Management stand-in on https://{args.host}:{args.port} (CA bundle {cert_path})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
