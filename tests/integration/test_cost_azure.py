"""The Azure Cost Management extractor against a loopback stand-in, through the Airflow connection.

No Azure Cost Management emulator exists, so ``localdev.cost_management_standin`` stands in for it: a real HTTPS
server on 127.0.0.1 answering the Entra ID client-credentials grant and the ``Query`` API from hand-written
rows, with paging, throttling and failures switched on per test. The extractor reaches it exactly as it reaches
Azure: an ``AIRFLOW_CONN_AZURE_COST`` connection, the provider's credential, a bearer token, REST calls.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from include.catalogue import load_catalogue
from include.catalogue.cost import AzureCostSource
from include.clouds.billing import azure
from include.clouds.billing.azure import extract_azure
from include.clouds.billing.schemas import AZURE_SOURCE_SCHEMA
from include.errors import CostQueryRejected, SchemaDrift, SourceUnavailable
from localdev.cost_management_standin import (
    local_connection,
    recorded_calls,
    reset_stand_in,
    seed_cost_rows,
    set_faults,
)
from localdev.processes import ProcessTable, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_SCHEMA = pa.schema([field for field in AZURE_SOURCE_SCHEMA if field.name != "subscription_id"])


class StandIn:
    """The running stand-in: its endpoint and the certificate to trust."""

    def __init__(self, endpoint: str, ca_bundle: str):
        self.endpoint, self.ca_bundle = endpoint, ca_bundle

    def seed(self, *rows: tuple) -> None:
        """Seed (ISO day, service, location, currency, actual cost, amortised cost) rows."""
        records = [dict(zip(SEED_SCHEMA.names, (date.fromisoformat(row[0]), *row[1:]), strict=True)) for row in rows]
        seed_cost_rows(self.endpoint, pa.Table.from_pylist(records, SEED_SCHEMA), self.ca_bundle)

    def faults(self, **faults) -> None:
        set_faults(self.endpoint, self.ca_bundle, **faults)

    def queries(self) -> list[dict]:
        return [call for call in recorded_calls(self.endpoint, self.ca_bundle) if call["kind"] == "query"]


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    """``python -m localdev.cost_management_standin`` on a free loopback port, stopped after the module."""
    state = tmp_path_factory.mktemp("cost-management")
    processes = ProcessTable(state / "run", state / "logs")
    port = free_port()
    argv = [sys.executable, "-m", "localdev.cost_management_standin", "--host", "127.0.0.1", "--port", str(port)]
    served = StandIn(f"https://127.0.0.1:{port}", str(state / "tls" / "cert.pem"))
    try:
        processes.start(
            "cost-management", [*argv, "--tls-dir", str(state / "tls")], env=dict(os.environ), cwd=REPO_ROOT
        )
        processes.wait_until(
            ["cost-management"],
            lambda: recorded_calls(served.endpoint, served.ca_bundle) is not None,
            20,
            what="the Cost Management stand-in",
        )
        yield served
    finally:
        processes.stop_all()


@pytest.fixture
def source(stand_in, monkeypatch) -> AzureCostSource:
    """The catalogue's Azure source, its connection pointed at a freshly reset stand-in."""
    reset_stand_in(stand_in.endpoint, stand_in.ca_bundle)
    source = load_catalogue().cost.sources.azure
    conn = local_connection(stand_in.endpoint, stand_in.ca_bundle)
    monkeypatch.setenv(f"AIRFLOW_CONN_{source.connection.upper()}", json.dumps(conn))
    return source


SUBSCRIPTION = "8f6b6b5e-3c1a-4d3e-9c39-2f1f0c7a5d10"  # config/regions.yaml's Azure cost scope
NOV_1, NOV_2 = date(2026, 11, 1), date(2026, 11, 2)


def _cost_rows(table: pa.Table) -> list[tuple]:
    assert table.schema == AZURE_SOURCE_SCHEMA
    assert set(table.column("subscription_id").to_pylist()) <= {SUBSCRIPTION}
    return [tuple(row[name] for name in SEED_SCHEMA.names) for row in table.to_pylist()]


def test_window_types_joined_and_dates_converted(stand_in, source):
    stand_in.seed(
        ("2026-10-31", "Virtual Machines", "eastus", "USD", 40.0, 40.0),  # before the window
        ("2026-11-01", "Virtual Machines", "EastUS", "USD", 10.5, 8.25),
        ("2026-11-01", "Storage", "westeurope", "EUR", 2.0, 2.0),
        ("2026-11-02", "Virtual Machines", "eastus", "USD", 3.0, 3.0),
        ("2026-11-02", "Virtual Machines", "eastus", "USD", 1.5, 1.0),  # same group: the service sums it
        ("2026-11-02", "Reserved VM Instances", "eastus", "USD", 700.0, None),  # a purchase: actual cost only
        ("2026-11-02", "Virtual Machines Reserved", "eastus", "USD", None, 23.0),  # its amortisation only
        ("2026-11-03", "Virtual Machines", "eastus", "USD", 99.0, 99.0),  # after the window
    )
    table = extract_azure(source, NOV_1, NOV_2)
    assert _cost_rows(table) == [
        (NOV_1, "Storage", "westeurope", "EUR", 2.0, 2.0),
        (NOV_1, "Virtual Machines", "eastus", "USD", 10.5, 8.25),
        (NOV_2, "Reserved VM Instances", "eastus", "USD", 700.0, 0.0),
        (NOV_2, "Virtual Machines", "eastus", "USD", 4.5, 4.0),
        (NOV_2, "Virtual Machines Reserved", "eastus", "USD", 0.0, 23.0),
    ]
    calls = recorded_calls(stand_in.endpoint, stand_in.ca_bundle)
    assert [call["kind"] for call in calls if call["kind"] != "discovery"] == ["token", "query", "query"]
    assert [call["type"] for call in calls if call["kind"] == "query"] == ["ActualCost", "AmortizedCost"]
    assert {call["path"] for call in calls if call["kind"] == "query"} == {
        f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.CostManagement/query"
    }


def test_every_page_is_read_once(stand_in, source):
    days = [f"2026-11-0{day}" for day in (1, 2, 3)]
    services = ["Bandwidth", "Storage", "Virtual Machines"]
    stand_in.seed(*[(day, service, "eastus", "USD", 1.0, 2.0) for day in days for service in services])
    stand_in.faults(page_size=2)
    table = extract_azure(source, NOV_1, date(2026, 11, 3))
    assert _cost_rows(table) == [
        (date.fromisoformat(day), service, "eastus", "USD", 1.0, 2.0) for day in days for service in services
    ]
    assert [(call["type"], call["skip"], call["rows"]) for call in stand_in.queries()] == [
        (kind, skip, 2 if skip < 8 else 1) for kind in ("ActualCost", "AmortizedCost") for skip in (0, 2, 4, 6, 8)
    ]


def test_columns_are_read_by_name_and_unknown_ones_ignored(stand_in, source, caplog):
    stand_in.seed(("2026-11-01", "Storage", "WestEurope", "EUR", 2.5, 2.0))
    stand_in.faults(column_order=["Currency", "ResourceLocation", "UsageDate", "ServiceName"], extra_columns=["Tag"])
    with caplog.at_level("WARNING", logger=azure.__name__):
        table = extract_azure(source, NOV_1, NOV_1)
    assert _cost_rows(table) == [(NOV_1, "Storage", "westeurope", "EUR", 2.5, 2.0)]
    assert "unknown column(s) ['Tag']" in caplog.text


def test_a_resource_group_scope_is_queried_there(stand_in, source):
    stand_in.seed(("2026-11-01", "Storage", "eastus", "USD", 1.0, 1.0))
    scope = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/ml-platform"
    table = extract_azure(AzureCostSource(connection=source.connection, scope=scope), NOV_1, NOV_1)
    assert table.column("subscription_id").to_pylist() == [SUBSCRIPTION]
    assert {call["path"] for call in stand_in.queries()} == {f"{scope}/providers/Microsoft.CostManagement/query"}


def test_throttling_waits_the_largest_retry_after(stand_in, source):
    stand_in.seed(("2026-11-01", "Storage", "eastus", "USD", 1.0, 1.0))
    stand_in.faults(throttle_next=1, retry_after={"qpu": 0.2, "entity": 1, "tenant": 0})
    table = extract_azure(source, NOV_1, NOV_1)
    assert _cost_rows(table) == [(NOV_1, "Storage", "eastus", "USD", 1.0, 1.0)]
    throttled, retried, amortized = stand_in.queries()
    assert (throttled["status"], retried["status"], amortized["status"]) == (429, 200, 200)
    assert retried["type"] == throttled["type"] == "ActualCost"
    assert retried["at"] - throttled["at"] >= 1.0


@pytest.mark.parametrize(
    ("max_attempts", "max_wait", "queries"),
    [(3, 300.0, 3), (10, 1.5, 2)],
    ids=["attempts-budget", "wait-budget"],
)
def test_persistent_throttling_is_source_unavailable(stand_in, source, monkeypatch, max_attempts, max_wait, queries):
    monkeypatch.setattr(azure, "MAX_ATTEMPTS", max_attempts)
    monkeypatch.setattr(azure, "MAX_WAIT_SECONDS", max_wait)
    stand_in.faults(throttle_next=1000, retry_after={"qpu": 1})
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match=f"/subscriptions/{SUBSCRIPTION} still answered HTTP 429"):
        extract_azure(source, NOV_1, NOV_1)
    assert time.monotonic() - started < queries + 2
    assert [call["status"] for call in stand_in.queries()] == [429] * queries


def test_server_errors_are_retried_with_backoff(stand_in, source, monkeypatch):
    monkeypatch.setattr(azure, "BACKOFF_SECONDS", 0.1)
    stand_in.seed(("2026-11-01", "Storage", "eastus", "USD", 1.0, 1.0))
    stand_in.faults(fail_next=2, fail_status=503)
    assert _cost_rows(extract_azure(source, NOV_1, NOV_1)) == [(NOV_1, "Storage", "eastus", "USD", 1.0, 1.0)]
    first, second, third, _ = stand_in.queries()
    assert [first["status"], second["status"], third["status"]] == [503, 503, 200]
    assert second["at"] - first["at"] >= 0.1 and third["at"] - second["at"] >= 0.2


def test_a_missing_column_is_schema_drift(stand_in, source):
    stand_in.seed(("2026-11-01", "Storage", "eastus", "USD", 1.0, 1.0))
    stand_in.faults(drop_columns=["ResourceLocation"])
    with pytest.raises(SchemaDrift, match="without column\\(s\\) ResourceLocation"):
        extract_azure(source, NOV_1, NOV_1)


def test_a_rejected_query_quotes_azure(stand_in, source):
    message = "Invalid query definition: Dimension 'ServiceName' is not valid for this scope."
    stand_in.faults(fail_next=1, fail_status=400, fail_code="BadRequest", fail_message=message)
    with pytest.raises(CostQueryRejected, match="HTTP 400 BadRequest") as raised:
        extract_azure(source, NOV_1, NOV_1)
    assert message in str(raised.value)
    assert [call["status"] for call in stand_in.queries()] == [400]  # not retried
