"""Tests of the cost report UI plugin.

The routes are tested against the real S3 object store of the catalogue's cost region (``store_for``, through
the amazon provider's hook), served by moto's S3 server in a thread on a loopback port: the session-wide
``local_clouds`` fixture would start all three emulators, which these tests do not need. The app is mounted
under its ``url_prefix`` as the Airflow API server mounts plugin apps, so URLs and relative links are the real ones.
"""

from __future__ import annotations

import json
import re
from datetime import date
from urllib.parse import urljoin

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from include.airflow.ui.cost_report import (
    NO_REPORT,
    NOT_CONFIGURED,
    URL_PREFIX,
    BadDay,
    CostReportPlugin,
    create_app,
    nav_bar,
    parse_day,
)
from include.catalogue import parse_catalogue
from include.cost.report import build_report
from include.cost.report_html import render_html
from include.cost.store import report_key
from tests.include.cost.test_report import DAY, catalogue_data, focus_frame, november_rows

EARLIER = date(2026, 11, 9)


@pytest.fixture
def client() -> TestClient:
    """The plugin's app mounted as the API server mounts it, with Airflow's auth dependency overridden."""
    from airflow.api_fastapi.core_api.security import get_user

    root = FastAPI()
    for entry in CostReportPlugin().fastapi_apps:
        entry["app"].dependency_overrides[get_user] = lambda: "test-user"
        root.mount(entry["url_prefix"], entry["app"])
    return TestClient(root)


def use_catalogue(data: dict, tmp_path, monkeypatch):
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("MLP_REGION_CATALOGUE", str(path))
    return parse_catalogue(data)


# --- without a store --------------------------------------------------------------------------------------------


def test_plugin_declares_app_and_browse_menu_entry():
    plugin = CostReportPlugin()
    assert plugin.name == "cost_report"
    [app] = plugin.fastapi_apps
    assert app == {"app": create_app(), "url_prefix": "/cost", "name": "Cost report"}
    [view] = plugin.external_views
    assert (view["name"], view["destination"], view["category"]) == ("Cost report", "nav", "browse")
    assert view["href"] == "cost/"  # relative to the UI base URL: no leading slash
    assert view["url_route"] == "cost-report"


def test_airflow_loads_and_mounts_the_plugin():
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_plugins

    plugins, import_errors = plugins_manager._get_plugins()
    assert "include.airflow.ui.cost_report" not in import_errors
    assert "cost_report" in [plugin.name for plugin in plugins]
    root = FastAPI()
    init_plugins(root)
    assert any(getattr(route, "path", None) == URL_PREFIX for route in root.routes)


@pytest.mark.parametrize("text", ["20261110", "2026-W46-2", "2026-13-01", "2026-02-30", "latest", "2026-11-1"])
def test_parse_day_takes_only_calendar_days(text):
    assert parse_day("2026-11-10") == date(2026, 11, 10)
    with pytest.raises(BadDay):
        parse_day(text)


def test_nav_bar_links_older_newer_and_json():
    days = [date(2026, 11, 10), date(2026, 11, 9), date(2026, 11, 8)]
    nav = nav_bar(days, date(2026, 11, 9), "../")
    hrefs = re.findall(r'href="([^"]+)"', nav)
    assert hrefs == ["../day/2026-11-08", "../day/2026-11-10", "../", "../days", "../day/2026-11-09/report.json"]
    assert re.findall(r'href="([^"]+)"', nav_bar(days, date(2026, 11, 10), "")) == [
        "day/2026-11-09", "./", "days", "day/2026-11-10/report.json"]  # fmt: skip


def test_without_a_cost_section(tmp_path, monkeypatch, client):
    data = catalogue_data()
    del data["cost"]
    use_catalogue(data, tmp_path, monkeypatch)
    assert NOT_CONFIGURED.split(":")[0] in client.get("/cost/").text
    assert client.get("/cost/day/2026-11-10").status_code == 404
    assert client.get("/cost/days.json").json() == []


# --- against S3 (moto) ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    from localdev.processes import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def store(moto_url, tmp_path, monkeypatch):
    """The cost region's real S3 store, reached through its Airflow connection, with an empty bucket."""
    from include.clouds.objectstore import store_for

    catalogue = use_catalogue(catalogue_data(), tmp_path, monkeypatch)
    region = catalogue.cost_store_region
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": moto_url, "region_name": region.cloud_region},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{region.connections.storage.upper()}", json.dumps(connection))
    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()
    s3 = store_for(region)
    s3.client.create_bucket(Bucket=region.bucket, CreateBucketConfiguration={"LocationConstraint": region.cloud_region})
    return s3


def put_report(store, catalogue, day: date) -> dict:
    """Build, render and store the report of ``day`` as the cost_report DAG does."""
    rows = [row for row in november_rows() if row["ChargePeriodStart"].date() <= day]
    report = build_report(focus_frame(rows), day, catalogue.cost, catalogue, None)
    store.put_bytes(report_key("cost", day, "json"), json.dumps(report).encode())
    store.put_bytes(report_key("cost", day, "html"), render_html(report).encode())
    return report


@pytest.mark.integration
def test_no_report_yet(store, client):
    response = client.get("/cost/")
    assert response.status_code == 200
    assert NO_REPORT in response.text
    assert client.get("/cost/days.json").json() == []
    assert NO_REPORT in client.get("/cost/days").text


@pytest.mark.integration
def test_latest_and_each_stored_report(store, client):
    catalogue = parse_catalogue(catalogue_data())
    put_report(store, catalogue, EARLIER)
    latest = put_report(store, catalogue, DAY)

    page = client.get("/cost/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Cloud cost report &middot; 2026-11-10" in page.text
    assert "$182.00" in page.text  # the day's cost, from the stored page
    assert page.text.index("<nav") < page.text.index("<h1>")  # the navigation bar opens the body

    assert client.get("/cost/days.json").json() == ["2026-11-10", "2026-11-09"]
    days_page = client.get("/cost/days").text
    assert 'href="day/2026-11-09"' in days_page and 'href="day/2026-11-10/report.json"' in days_page

    earlier = client.get("/cost/day/2026-11-09")
    assert earlier.status_code == 200 and "Cloud cost report &middot; 2026-11-09" in earlier.text
    for href in re.findall(r"<nav.*?</nav>", earlier.text, re.S)[0].split('href="')[1:]:
        target = urljoin("http://testserver/cost/day/2026-11-09", href.split('"')[0])
        assert client.get(target).status_code == 200, target  # every navigation link leads somewhere

    as_json = client.get("/cost/day/2026-11-10/report.json")
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json() == latest


@pytest.mark.integration
def test_bad_and_missing_days(store, client):
    put_report(store, parse_catalogue(catalogue_data()), DAY)
    for bad in ("2026-13-01", "20261110", "2026-02-30", "yesterday"):
        assert client.get(f"/cost/day/{bad}").status_code == 400
        assert client.get(f"/cost/day/{bad}/report.json").status_code == 400
    missing = client.get("/cost/day/2026-11-08")
    assert missing.status_code == 404 and "No cost report for 2026-11-08." in missing.text
    assert client.get("/cost/day/2026-11-08/report.json").status_code == 404
