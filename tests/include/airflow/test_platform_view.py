"""Tests of the Platform view: the summary builder against a real SQLite state database seeded through the
replication status and failover stores, its page, and its app mounted as the API server mounts plugin apps.

What is not in the state database comes into ``build_summary`` as plain data here: Route 53's traffic state,
the regions' rollout pointers, a cost report built by ``build_report`` and DAG runs shaped as Airflow's REST
API returns them. ``tests/integration/test_platform_view.py`` reads all of them from the real services.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from include.airflow.ui.platform_view import (
    FAILOVER_WINDOW_DAYS,
    PLATFORM_DAGS,
    URL_PREFIX,
    PlatformViewPlugin,
    Sources,
    build_summary,
    create_app,
    render_page,
    version_key,
)
from include.catalogue import load_catalogue
from include.clouds.route53 import TrafficState
from include.cost.report import build_report
from include.failover.machine import State, moved
from include.failover.store import FailoverStore
from include.replication.rollout import RolloutPointer
from include.replication.status import StatusStore
from include.state.engine import state_engine
from include.state.migrate import upgrade_state_db
from tests.include.cost.test_report import focus_frame, row

AWS, GCP, AZURE = "aws-us-west-2", "gcp-europe-west1", "azure-eastus"
CORRUPT = "<b>model.skops</b>: sha256 9c41e0 read back, 3f2a7d expected"
MOVE_REASON = f"automatic failover to {AWS}, {GCP} (UNHEALTHY: probes timed out from probe-a, probe-b)"
# The versions each region's rollout pointer names: azure-eastus still serves iris-classifier 1.
POINTED = {(AWS, "iris-classifier"): "2", (GCP, "iris-classifier"): "2", (AZURE, "iris-classifier"): "1",
           (AWS, "fraud-detector"): "7", (GCP, "fraud-detector"): "7", (AZURE, "fraud-detector"): "6"}  # fmt: skip


# --- seeding, shared with the integration test and the README's screenshot -----------------------------------------


def seed_replication(status: StatusStore, now: datetime) -> None:
    """Four versions of two models, registered in aws-us-west-2: one copy lagging past the RPO, one corrupt."""
    sha = "5e" * 32
    verified = [
        ("iris-classifier", "1", GCP, 38),
        ("iris-classifier", "1", AZURE, 52),
        ("iris-classifier", "2", GCP, 41),
        ("fraud-detector", "6", GCP, 35),
        ("fraud-detector", "6", AZURE, 47),
        ("fraud-detector", "7", GCP, 44),
    ]
    for model, version, region, lag in verified:
        event = now - timedelta(seconds=lag)
        status.record(model, version, region, AWS, "verified", sha256=sha, size=48 * 2**20, event_time=event)
    status.record("iris-classifier", "2", AZURE, AWS, "copying", event_time=now - timedelta(minutes=25))
    status.record("fraud-detector", "7", AZURE, AWS, "corrupt", sha256=sha, message=CORRUPT)


def seed_failover(failover: FailoverStore, now: float, run_id: str | None = None) -> None:
    """azure-eastus failed two hours ago and was failed over automatically; gcp-europe-west1 is degraded now."""
    failover.load([AWS, GCP, AZURE])
    steps = [
        (AZURE, State.DEGRADED, "round failed: probe-a: connect timeout; probe-b: connect timeout", {}, now - 7210),
        (AZURE, State.UNHEALTHY, "failed 3 rounds in a row over 6.1s: connect timeouts", {}, now - 7204),
        (AZURE, State.FAILOVER, MOVE_REASON,
         {"before": {"weights": {AWS: 100, GCP: 100, AZURE: 100}}, "after": {"weights": {AWS: 100, GCP: 100, AZURE: 0}},
          "changes": ["C0A1B2C3D4"]}, now - 7196),
        (GCP, State.DEGRADED, "round degraded: probe-b: /ready took 731 ms (slow above 500 ms)", {}, now - 300),
    ]  # fmt: skip
    for region, state, reason, evidence, at in steps:
        record = failover.load([region])[region]
        updated, transition = moved(record, state, reason, evidence, at)
        failover.save([updated], [transition], run_id if state == State.FAILOVER else None)


def traffic_after_failover() -> TrafficState:
    """Route 53 after seed_failover's move: azure-eastus drained and out of the latency and failover records."""
    return TrafficState({AWS: 100, GCP: 100, AZURE: 0}, frozenset({AWS, GCP}), {"PRIMARY": AWS, "SECONDARY": GCP})


def pointer(model: str, version: str) -> RolloutPointer:
    return RolloutPointer(model, version, "ab" * 32, "2026-12-01T00:00:00+00:00", "2026-12-01T00:01:00+00:00",
                          "replication")  # fmt: skip


def cost_report(catalogue, day: date) -> dict:
    """The cost report of ``day`` over 20 days of three clouds' billing; a new SageMaker spend on ``day``."""
    rows = []
    for back in range(20):
        each = day - timedelta(days=back)
        rows += [row(each, "aws", "us-west-2", "EC2", 152.0, 141.0), row(each, "aws", "us-west-2", "S3", 12.0, 12.0),
                 row(each, "gcp", "europe-west1", "Compute Engine", 96.0, 96.0),
                 row(each, "azure", "eastus", "Virtual Machines", 71.0, 71.0)]  # fmt: skip
    rows.append(row(day, "aws", "us-west-2", "SageMaker", 64.0, 64.0))
    return build_report(focus_frame(rows), day, catalogue.cost, catalogue)


def rest_run(dag_id: str, run_id: str, state: str, run_after: str) -> dict:
    """A run as ``GET /api/v2/dags/{dag_id}/dagRuns`` lists it (the fields the view reads)."""
    return {"dag_id": dag_id, "dag_run_id": run_id, "state": state, "run_after": run_after}


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path, monkeypatch):
    """An empty, migrated state database behind the catalogue's state connection (``mlp_state``)."""
    path = tmp_path / "state.db"
    monkeypatch.setenv("AIRFLOW_CONN_MLP_STATE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    upgrade_state_db(f"sqlite:///{path}")
    engine = state_engine("mlp_state")
    yield engine
    engine.dispose()


@pytest.fixture
def catalogue():
    return load_catalogue()


def sources_of(engine, **overrides) -> Sources:
    """Sources on the real state database; everything else empty unless given."""
    values = {
        "status": StatusStore(engine),
        "failover": FailoverStore(engine),
        "traffic": lambda: TrafficState(
            {AWS: 100, GCP: 100, AZURE: 100}, frozenset({AWS, GCP, AZURE}), {"PRIMARY": AWS, "SECONDARY": GCP}
        ),  # fmt: skip
        "pointer": lambda region, model: None,
        "cost_report": lambda: None,
        "dag_runs": lambda dag_ids: {dag_id: [] for dag_id in dag_ids},
    } | overrides
    return Sources(**values)


@pytest.fixture
def seeded(engine, catalogue) -> Sources:
    """The state database seeded as the screenshot shows it, and the sources outside it to match."""
    now = datetime.now(UTC)
    seed_replication(StatusStore(engine), now)
    seed_failover(FailoverStore(engine), now.timestamp())
    report = cost_report(catalogue, now.date() - timedelta(days=1))
    runs = {dag_id: [] for dag_id in PLATFORM_DAGS} | {
        "failover_moves": [rest_run("failover_moves", "asset_triggered__2026-12-07T07:14:03+00:00", "success",
                                    "2026-12-07T07:14:03.120000Z")],
        "cost_report": [rest_run("cost_report", "scheduled__2026-12-06T00:00:00+00:00", "success",
                                 "2026-12-07T00:00:00Z"),
                        rest_run("cost_report", "scheduled__2026-12-05T00:00:00+00:00", "failed",
                                 "2026-12-06T00:00:00Z")],
        "manual_failover": "not in Airflow (not parsed yet, or removed)",
    }  # fmt: skip
    return sources_of(
        engine,
        traffic=traffic_after_failover,
        pointer=lambda region, model: pointer(model, POINTED[region.name, model]),
        cost_report=lambda: report,
        dag_runs=lambda dag_ids: {dag_id: runs[dag_id] for dag_id in dag_ids},
    )


# --- the plugin ----------------------------------------------------------------------------------------------------


def test_plugin_declares_app_and_top_level_nav_entry():
    plugin = PlatformViewPlugin()
    assert plugin.name == "platform_view"
    [app] = plugin.fastapi_apps
    assert app == {"app": create_app(), "url_prefix": "/platform", "name": "Platform"}
    [view] = plugin.external_views
    assert view == {"name": "Platform", "href": "platform/", "destination": "nav", "nav_top_level": True,
                    "url_route": "platform"}  # fmt: skip


def test_airflow_loads_and_mounts_the_plugin():
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_plugins

    plugins, import_errors = plugins_manager._get_plugins()
    assert "include.airflow.ui.platform_view" not in import_errors
    assert "platform_view" in [plugin.name for plugin in plugins]
    root = FastAPI()
    init_plugins(root)
    assert any(getattr(route, "path", None) == URL_PREFIX for route in root.routes)


def test_version_key_orders_numbers_as_numbers():
    assert sorted(["10", "2", "1.10", "1.9", "rc1"], key=version_key) == ["1.9", "1.10", "2", "10", "rc1"]


# --- the summary ---------------------------------------------------------------------------------------------------


def test_regions_show_health_since_when_and_dns_weight(seeded, catalogue):
    regions = build_summary(catalogue, seeded)["regions"]
    assert regions["error"] is None and regions["dns_error"] is None
    by_name = {region["name"]: region for region in regions["items"]}
    assert list(by_name) == [AWS, GCP, AZURE]  # catalogue order
    assert [(r["provider"], r["state"], r["dns_weight"]) for r in by_name.values()] == [
        ("aws", "HEALTHY", 100), ("gcp", "DEGRADED", 100), ("azure", "FAILOVER", 0)]  # fmt: skip
    azure = by_name[AZURE]
    since = datetime.fromisoformat(azure["since"])
    assert timedelta(seconds=7190) < datetime.now(UTC) - since < timedelta(seconds=7210)
    assert azure["reason"] == MOVE_REASON and azure["latency_record"] is False and azure["failover_roles"] == []
    assert by_name[AWS]["primary"] and by_name[AWS]["failover_roles"] == ["PRIMARY"]
    assert by_name[GCP]["failover_roles"] == ["SECONDARY"]


def test_failover_records_are_the_moves_with_what_moved(seeded, catalogue):
    failovers = build_summary(catalogue, seeded)["failovers"]
    [move] = failovers["items"]  # the health transitions (DEGRADED, UNHEALTHY) moved no traffic
    assert (move["region"], move["kind"], move["from_state"], move["to_state"]) == (
        AZURE, "failover", "UNHEALTHY", "FAILOVER")  # fmt: skip
    assert move["weights"] == [{"region": AZURE, "before": 100, "after": 0}]  # only what changed
    assert move["reason"] == MOVE_REASON and move["approval"] is None


def test_an_approved_failback_names_who_approved_it(engine, catalogue):
    failover = FailoverStore(engine)
    now = time.time()
    seed_failover(failover, now)
    approval = {"decision": "approve", "by": "oncall-lee", "by_id": "7", "at": "2026-12-07T09:30:00+00:00",
                "deadline_applied": False}  # fmt: skip
    record = failover.load([AZURE])[AZURE]
    evidence = {"before": {"weights": {AZURE: 0}}, "after": {"weights": {AZURE: 100}}, "approval": approval}
    failover.save(*[[item] for item in moved(record, State.HEALTHY, "failback complete: by hand", evidence, now)])
    newest, older = build_summary(catalogue, sources_of(engine), now)["failovers"]["items"]
    assert (newest["kind"], newest["approval"]["by"]) == ("failback", "oncall-lee")
    assert newest["weights"] == [{"region": AZURE, "before": 0, "after": 100}]
    assert older["kind"] == "failover"
    later = now + (FAILOVER_WINDOW_DAYS + 1) * 86400
    assert build_summary(catalogue, sources_of(engine), later)["failovers"]["items"] == []  # out of the window


def test_model_versions_per_region_current_verified_lagging_and_corrupt(seeded, catalogue):
    models = build_summary(catalogue, seeded)["models"]
    assert models["regions"] == [AWS, GCP, AZURE] and models["pointer_errors"] == {}
    rows = {(item["model"], item["version"]): item["regions"] for item in models["items"]}
    assert list(rows) == [("fraud-detector", "7"), ("fraud-detector", "6"), ("iris-classifier", "2"),
                          ("iris-classifier", "1")]  # fmt: skip
    iris2 = rows["iris-classifier", "2"]
    assert (iris2[AWS]["state"], iris2[AWS]["current"]) == (None, True)  # the source region has no replica row
    assert (iris2[GCP]["state"], iris2[GCP]["verified"], iris2[GCP]["current"]) == ("verified", True, True)
    assert 41 <= iris2[GCP]["lag_seconds"] < 60 and not iris2[GCP]["lagging"]
    assert (iris2[AZURE]["state"], iris2[AZURE]["current"], iris2[AZURE]["lagging"]) == ("copying", False, True)
    assert rows["iris-classifier", "1"][AZURE]["current"] is True  # azure still serves version 1
    corrupt = rows["fraud-detector", "7"][AZURE]
    assert (corrupt["state"], corrupt["verified"], corrupt["message"]) == ("corrupt", False, CORRUPT)


def test_cost_section_has_the_latest_reports_totals_anomalies_and_budgets(seeded, catalogue):
    cost = build_summary(catalogue, seeded)["cost"]
    report = cost["report"]
    assert cost["configured"] and cost["error"] is None and cost["page_path"] == "plugin/cost-report"
    assert report["day"] == (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    assert {p["provider"]: p["effective"] for p in report["by_provider"]} == {
        "aws": 141.0 + 12.0 + 64.0, "gcp": 96.0, "azure": 71.0}  # fmt: skip
    assert report["effective"] == pytest.approx(141 + 12 + 64 + 96 + 71)
    [anomaly] = report["anomalies"]
    assert (anomaly["service"], anomaly["cost"]) == ("SageMaker", 64.0)
    assert [(b["provider"], b["region"]) for b in report["budgets"]] == [
        ("aws", "us-west-2"), ("gcp", "europe-west1"), ("azure", "eastus"), ("aws", None)]  # fmt: skip


def test_runs_link_to_their_pages_in_the_airflow_ui(seeded, catalogue):
    runs = {item["dag_id"]: item for item in build_summary(catalogue, seeded)["runs"]["items"]}
    assert list(runs) == list(PLATFORM_DAGS)
    [move] = runs["failover_moves"]["runs"]
    assert move["run_path"] == "dags/failover_moves/runs/asset_triggered__2026-12-07T07%3A14%3A03%2B00%3A00"
    assert [run["state"] for run in runs["cost_report"]["runs"]] == ["success", "failed"]
    assert runs["manual_failover"]["error"].startswith("not in Airflow")
    assert runs["model_replication"] == {"dag_id": "model_replication", "dag_path": "dags/model_replication",
                                         "error": None, "runs": []}  # fmt: skip


def test_a_source_that_cannot_be_read_is_named_and_the_rest_still_shown(seeded, catalogue, engine):
    def unreachable(*args):
        raise ConnectionError("Could not connect to the endpoint URL: http://127.0.0.1:1/\nretried 4 times")

    broken = sources_of(engine, traffic=unreachable, pointer=unreachable, cost_report=unreachable,
                        dag_runs=unreachable)  # fmt: skip
    summary = build_summary(catalogue, broken)
    error = "ConnectionError: Could not connect to the endpoint URL: http://127.0.0.1:1/"  # its first line
    assert summary["regions"]["dns_error"] == error
    assert [region["state"] for region in summary["regions"]["items"]] == ["HEALTHY", "DEGRADED", "FAILOVER"]
    assert [region["dns_weight"] for region in summary["regions"]["items"]] == [None, None, None]
    assert summary["models"]["pointer_errors"] == {AWS: error, GCP: error, AZURE: error}
    assert all(cell["current"] is None for item in summary["models"]["items"] for cell in item["regions"].values())
    assert summary["cost"]["error"] == error and summary["runs"]["error"] == error
    page = render_page(summary)
    assert "Route 53 could not be read, so the DNS weights are unknown" in page
    assert "The cost report could not be read" in page and "DAG runs could not be read" in page


# --- the page ------------------------------------------------------------------------------------------------------


def test_page_shows_every_section_escaped_with_links_into_the_ui(seeded, catalogue):
    page = render_page(build_summary(catalogue, seeded))
    shown = [AWS, GCP, AZURE, "Microsoft Azure", "FAILOVER", "DEGRADED", "DNS weight <strong>0</strong>",
             "iris-classifier", "fraud-detector", "over the 15 min RPO", "SageMaker", "&#9679; current"]  # fmt: skip
    for text in shown:
        assert text in page, text
    assert "&lt;b&gt;model.skops&lt;/b&gt;" in page and "<b>model.skops" not in page  # autoescaped
    assert "forecast past 100%" in page  # the us-west-2 budget's alert, with the threshold it crossed
    assert '<meta http-equiv="refresh" content="30">' in page
    hrefs = re.findall(r'<a href="([^"]+)"( target="_top")?', page)
    assert ("../plugin/replication-status", ' target="_top"') in hrefs
    assert ("../plugin/cost-report", ' target="_top"') in hrefs
    assert ("../dags/failover_moves/runs/asset_triggered__2026-12-07T07%3A14%3A03%2B00%3A00", ' target="_top"') in hrefs
    assert ("api/summary", "") in hrefs
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)  # self-contained: nothing from elsewhere


def test_empty_platform_renders_its_empty_states(engine, catalogue):
    summary = build_summary(catalogue, sources_of(engine))
    assert summary["failovers"]["items"] == [] and summary["models"]["items"] == []
    assert summary["cost"]["report"] is None
    page = render_page(summary)
    assert "No failover yet (none recorded in the last 30 days)." in page
    assert "No model version replicated yet." in page
    assert "No cost report yet: run the cost_report DAG." in page
    assert page.count("no run yet") == len(PLATFORM_DAGS)
    unconfigured = render_page(build_summary(catalogue, sources_of(engine, cost_configured=False)))
    assert "Cost reporting is not configured" in unconfigured


# --- the app -------------------------------------------------------------------------------------------------------


def test_without_a_login_the_app_answers_401():
    root = FastAPI()
    root.mount(URL_PREFIX, create_app())
    client = TestClient(root)
    for path in ("/platform/", "/platform/api/summary"):
        response = client.get(path)
        assert response.status_code == 401 and response.json() == {"detail": "Not authenticated"}


def test_the_app_serves_the_live_summary_and_names_what_it_cannot_reach(engine, monkeypatch):
    """Logged in (Airflow's auth dependency overridden: no auth manager runs here), with the seeded state
    database but no cloud connections and no ``[api] base_url``: those sections say why, the rest is shown."""
    from airflow.api_fastapi.core_api.security import get_user

    for name in os.environ:  # the session's local_clouds fixture, if it ran, left the emulators' connections
        if name.startswith("AIRFLOW_CONN_") and name != "AIRFLOW_CONN_MLP_STATE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # boto3 finds no credentials without asking the network
    seed_failover(FailoverStore(engine), time.time())
    app = create_app()
    monkeypatch.setitem(app.dependency_overrides, get_user, lambda: "test-user")
    root = FastAPI()
    root.mount(URL_PREFIX, app)
    client = TestClient(root)
    summary = client.get("/platform/api/summary").json()
    assert [region["state"] for region in summary["regions"]["items"]] == ["HEALTHY", "DEGRADED", "FAILOVER"]
    assert summary["regions"]["dns_error"].startswith("NoCredentialsError")  # no AWS connection here
    assert summary["failovers"]["items"][0]["reason"] == MOVE_REASON
    assert summary["cost"]["error"].startswith("NoCredentialsError")
    assert "[api] base_url is ''" in summary["runs"]["error"] and "AIRFLOW__API__BASE_URL" in summary["runs"]["error"]
    page = client.get("/platform/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert MOVE_REASON in page.text and "Route 53 could not be read" in page.text
