"""Azure Cost Management ``Query``: daily actual and amortised cost per service and location, over REST.

Each window (at most ``MAX_DAYS_PER_QUERY`` days; longer windows are split) is queried twice, as ``ActualCost``
and as ``AmortizedCost``, Daily, grouped by ``ServiceName`` and ``ResourceLocation`` (the API allows two
groupings); every ``nextLink`` is followed with the same body. Columns are read by name, so their order does not
matter; a missing one is ``SchemaDrift``, an extra one is logged and ignored. The two answers are joined on
(day, service, location, currency), a side without the group counting 0.0.

Throttling: a 429 waits the largest of Azure's retry-after headers (``RETRY_AFTER_HEADERS``), a 5xx or a
network error waits ``BACKOFF_SECONDS`` doubling per attempt, within ``MAX_ATTEMPTS`` per request and
``MAX_WAIT_SECONDS`` over the whole extraction (tenacity); past that, ``SourceUnavailable``. Another 4xx raises
``CostQueryRejected`` quoting Azure's ``error.code`` and ``error.message``.

Credentials come from the Airflow connection (``conn_type`` azure), read as the microsoft-azure provider's hooks
read it: login (client id), password (client secret) and ``tenantId`` make a ``ClientSecretCredential``;
without them the provider's ``get_sync_default_azure_credential`` (managed or workload identity, honouring
``managed_identity_client_id`` and ``workload_identity_tenant_id``). The token is for ``ARM_TOKEN_SCOPE``.
Optional extras, all unset on Azure's public cloud:

- ``management_endpoint``: the Resource Manager URL (default ``https://management.azure.com``)
- ``authority_host``: the Entra ID host the client-secret flow asks for tokens (default the public cloud)
- ``disable_instance_discovery``: true for an authority Microsoft's instance discovery does not know
- ``ca_bundle``: a PEM file of the CAs to trust for both (default the system's)

Locally all four point at ``localdev.cost_management_standin``, which serves the token endpoint and the Query API
over TLS on 127.0.0.1, so the same client-secret token flow runs there as in Azure: azure-identity and MSAL only
accept an https authority, hence TLS with a certificate the stand-in generates rather than plain http.
"""

from __future__ import annotations

import logging
import ssl
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pyarrow as pa
import tenacity

from include.catalogue.cost import AzureCostSource
from include.clouds.billing.schemas import AZURE_SOURCE_SCHEMA
from include.errors import CostQueryRejected, SchemaDrift, SourceUnavailable

log = logging.getLogger(__name__)

API_VERSION = "2023-11-01"
DEFAULT_MANAGEMENT_ENDPOINT = "https://management.azure.com"
ARM_TOKEN_SCOPE = "https://management.azure.com/.default"  # noqa: S105 - an OAuth scope, not a password
COST_TYPES = {"ActualCost": "actual_cost", "AmortizedCost": "amortized_cost"}
GROUPING = [{"type": "Dimension", "name": "ServiceName"}, {"type": "Dimension", "name": "ResourceLocation"}]
COLUMNS = ("UsageDate", "ServiceName", "ResourceLocation", "Currency", "Cost")
RETRY_AFTER_HEADERS = (
    "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after",
    "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after",
    "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after",
    "retry-after",
)
MAX_DAYS_PER_QUERY = 31  # the API truncates longer Daily windows
MAX_ATTEMPTS = 6  # per request, the first one included
MAX_WAIT_SECONDS = 300.0  # waiting between retries, over one extraction
BACKOFF_SECONDS = 2.0  # the first wait after a 5xx (or a 429 without retry-after), doubled each attempt
MAX_PAGES = 1000  # a loop guard: a month of daily groups is a few pages


def _connection_field(conn, name: str) -> Any:
    from airflow.providers.microsoft.azure.utils import get_field

    return get_field(conn_id=conn.conn_id, conn_type="azure", extras=conn.extra_dejson, field_name=name)


def management_credential(conn):
    """The azure-identity credential for a Cost Management connection (see the module docstring)."""
    from airflow.providers.microsoft.azure.utils import get_sync_default_azure_credential

    tenant = _connection_field(conn, "tenantId")
    if not (conn.login and conn.password and tenant):
        return get_sync_default_azure_credential(
            managed_identity_client_id=_connection_field(conn, "managed_identity_client_id"),
            workload_identity_tenant_id=_connection_field(conn, "workload_identity_tenant_id"),
        )
    from azure.identity import AzureAuthorityHosts, ClientSecretCredential

    ca_bundle = _connection_field(conn, "ca_bundle")
    return ClientSecretCredential(
        tenant_id=tenant,
        client_id=conn.login,
        client_secret=conn.password,
        authority=_connection_field(conn, "authority_host") or AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
        disable_instance_discovery=str(_connection_field(conn, "disable_instance_discovery")).lower() == "true",
        connection_verify=ca_bundle or True,
    )


class CostManagementClient:
    """Query API calls on one scope, with the connection's credential and one retry budget for all of them."""

    def __init__(self, source: AzureCostSource):
        from airflow.providers.microsoft.azure.hooks.base_azure import AzureBaseHook

        conn = AzureBaseHook.get_connection(source.connection)
        self.scope = source.scope
        self.credential = management_credential(conn)
        endpoint = _connection_field(conn, "management_endpoint") or DEFAULT_MANAGEMENT_ENDPOINT
        self.query_url = f"{endpoint.rstrip('/')}{source.scope}/providers/Microsoft.CostManagement/query"
        ca_bundle = _connection_field(conn, "ca_bundle")
        verify = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self.http = httpx.Client(verify=verify, timeout=httpx.Timeout(60.0, connect=10.0))
        self.waited = 0.0

    def close(self) -> None:
        self.http.close()
        self.credential.close()

    def query(self, cost_type: str, first_day: date, last_day: date) -> list[dict[str, Any]]:
        """Every row of one query, as {column name: value}, all pages followed."""
        body = {
            "type": cost_type,
            "timeframe": "Custom",
            "timePeriod": {"from": f"{first_day.isoformat()}T00:00:00Z", "to": f"{last_day.isoformat()}T23:59:59Z"},
            "dataset": {
                "granularity": "Daily",
                "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
                "grouping": GROUPING,
            },
        }
        url, params = self.query_url, {"api-version": API_VERSION}
        rows: list[dict[str, Any]] = []
        ignored: set[str] = set()
        for _ in range(MAX_PAGES):
            properties = self._post(url, params, body).get("properties") or {}
            names = [column["name"] for column in properties.get("columns") or []]
            missing = [name for name in COLUMNS if name not in names]
            if missing:
                raise SchemaDrift(
                    f"azure Cost Management {cost_type} query on {self.scope} answered without column(s) "
                    f"{', '.join(missing)} (columns: {', '.join(names) or 'none'})"
                )
            ignored.update(name for name in names if name not in COLUMNS)
            rows.extend(dict(zip(names, row, strict=True)) for row in properties.get("rows") or [])
            url, params = properties.get("nextLink"), None  # the link carries api-version and $skiptoken
            if not url:
                break
        else:
            raise SourceUnavailable(f"azure Cost Management kept paging past {MAX_PAGES} pages on {self.scope}")
        if ignored:
            log.warning("azure Cost Management %s query: ignoring unknown column(s) %s", cost_type, sorted(ignored))
        return rows

    def _post(self, url: str, params: dict | None, body: dict) -> dict:
        """POST with the retry rules of the module docstring (on tenacity); the answer's JSON ({} for 204)."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_RetryableAnswer),
            wait=_wait_before_retry,
            stop=tenacity.stop_after_attempt(MAX_ATTEMPTS) | self._wait_budget_spent,
            before_sleep=self._count_wait,
        )
        try:
            return retrying(self._post_once, url, params, body)
        except tenacity.RetryError as exhausted:
            last = exhausted.last_attempt
            raise SourceUnavailable(
                f"azure Cost Management on {self.scope} still answered {last.exception()} after "
                f"{last.attempt_number} attempt(s) and {self.waited:.1f} s of waiting "
                f"(budget: {MAX_ATTEMPTS} attempts, {MAX_WAIT_SECONDS:g} s)"
            ) from None

    def _post_once(self, url: str, params: dict | None, body: dict) -> dict:
        """One POST: the answer's JSON, ``_RetryableAnswer`` for a 429, a 5xx or no answer, else rejected."""
        token = self.credential.get_token(ARM_TOKEN_SCOPE).token
        try:
            answer = self.http.post(url, params=params, json=body, headers={"Authorization": f"Bearer {token}"})
        except httpx.TransportError as error:
            raise _RetryableAnswer(f"unreachable ({error!r})") from error
        if answer.status_code == 204:
            return {}
        if answer.is_success:
            return answer.json()
        if answer.status_code == 429 or answer.status_code >= 500:
            raise _RetryableAnswer(f"HTTP {answer.status_code}", retry_after_seconds(answer.headers))
        raise CostQueryRejected(f"azure Cost Management query on {self.scope} was rejected: {_azure_error(answer)}")

    def _wait_budget_spent(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.waited + retry_state.upcoming_sleep > MAX_WAIT_SECONDS

    def _count_wait(self, retry_state: tenacity.RetryCallState) -> None:
        log.info(
            "azure Cost Management answered %s; retrying in %.1f s",
            retry_state.outcome.exception(),
            retry_state.upcoming_sleep,
        )
        self.waited += retry_state.upcoming_sleep


class _RetryableAnswer(Exception):
    """A throttled (429), failed (5xx) or missing answer; ``wait`` is Azure's retry-after, if it sent one."""

    def __init__(self, status: str, wait: float | None = None):
        super().__init__(status)
        self.wait = wait


def _wait_before_retry(retry_state: tenacity.RetryCallState) -> float:
    """Azure's retry-after when it sent one, else ``BACKOFF_SECONDS`` doubled per attempt."""
    wait = retry_state.outcome.exception().wait
    return wait if wait is not None else BACKOFF_SECONDS * 2 ** (retry_state.attempt_number - 1)


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """The largest wait, in seconds, among Azure's retry-after headers; None when none is a number."""
    waits = []
    for name in RETRY_AFTER_HEADERS:
        try:
            waits.append(float(headers[name]))
        except (KeyError, ValueError):
            continue
    return max(waits) if waits else None


def _azure_error(answer: httpx.Response) -> str:
    """``HTTP <status> <error.code>: <error.message>`` from Azure's error body, or the raw text."""
    try:
        error = answer.json()["error"]
        return f"HTTP {answer.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {answer.status_code}: {answer.text[:500]}"


def usage_date(value: Any) -> date:
    """``UsageDate`` as the API sends it (a number such as 20261101) as a date."""
    try:
        return datetime.strptime(str(int(value)), "%Y%m%d").date()
    except (TypeError, ValueError):
        raise SchemaDrift(f"azure Cost Management UsageDate {value!r} is not a yyyymmdd number") from None


def query_windows(first_day: date, last_day: date) -> list[tuple[date, date]]:
    """``first_day``..``last_day`` cut into consecutive windows of at most ``MAX_DAYS_PER_QUERY`` days."""
    if last_day < first_day:
        raise ValueError(f"the window ends ({last_day}) before it starts ({first_day})")
    windows = []
    start = first_day
    while start <= last_day:
        end = min(start + timedelta(days=MAX_DAYS_PER_QUERY - 1), last_day)
        windows.append((start, end))
        start = end + timedelta(days=1)
    return windows


def extract_azure(source: AzureCostSource, first_day: date, last_day: date) -> pa.Table:
    """Daily actual and amortised cost per service and location on the source's scope, ``first_day``..``last_day``."""
    client = CostManagementClient(source)
    costs: dict[tuple, dict[str, float]] = defaultdict(lambda: dict.fromkeys(COST_TYPES.values(), 0.0))
    try:
        for start, end in query_windows(first_day, last_day):
            for cost_type, column in COST_TYPES.items():
                for row in client.query(cost_type, start, end):
                    day = usage_date(row["UsageDate"])
                    if first_day <= day <= last_day:
                        key = (day, row["ServiceName"], (row["ResourceLocation"] or "").lower(), row["Currency"])
                        costs[key][column] += float(row["Cost"])
    finally:
        client.close()
    subscription_id = source.scope.split("/")[2]
    keys = sorted(costs)
    log.info("azure Cost Management: %d day groups on %s for %s..%s", len(keys), source.scope, first_day, last_day)
    return pa.table(
        {
            "usage_date": [key[0] for key in keys],
            "service_name": [key[1] for key in keys],
            "resource_location": [key[2] for key in keys],
            "currency": [key[3] for key in keys],
            "actual_cost": [costs[key]["actual_cost"] for key in keys],
            "amortized_cost": [costs[key]["amortized_cost"] for key in keys],
            "subscription_id": [subscription_id] * len(keys),
        },
        schema=AZURE_SOURCE_SCHEMA,
    )
