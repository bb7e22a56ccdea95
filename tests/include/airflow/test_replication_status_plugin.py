"""Tests of the replication status UI plugin, against a temporary SQLite status store.

The app is mounted under its ``url_prefix`` as the Airflow API server mounts plugin apps, so the URLs and the
page's relative links are the real ones.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from include.airflow.ui.replication_status import BADGE_COLOURS, URL_PREFIX, ReplicationStatusPlugin, create_app
from include.replication.status import StatusStore
from include.state.migrate import upgrade_state_db

SHA = "ab" * 32
EVIL = "<script>alert('x')</script> checksum mismatch & retry"


@pytest.fixture
def store(tmp_path, monkeypatch) -> StatusStore:
    """An empty status store behind the catalogue's state connection (``mlp_state``)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLP_STATE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "status.db")})
    )
    upgrade_state_db(f"sqlite:///{tmp_path / 'status.db'}")
    return StatusStore.from_connection("mlp_state")


@pytest.fixture
def filled(store) -> StatusStore:
    """One row in each state; the verified one was requested 42 s before it was verified."""
    event_time = datetime.now(UTC) - timedelta(seconds=42)
    store.record("churn", "3", "gcp-europe-west1", "aws-us-east-1", "copying", run_id="run-1")
    store.record(
        "churn", "3", "aws-us-west-2", "aws-us-east-1", "verified", sha256=SHA, size=3 * 2**20, event_time=event_time
    )
    store.record("fraud", "12", "azure-westeurope", "aws-us-east-1", "failed", message=EVIL)
    store.record("churn", "4", "aws-us-west-2", "aws-us-east-1", "pending")
    return store


@pytest.fixture
def client() -> TestClient:
    """The plugin's app mounted as the Airflow API server mounts it, with a logged-in user.

    Airflow's auth dependency is overridden here (no auth manager runs in unit tests); the end-to-end test
    checks the real login on a running API server.
    """
    from airflow.api_fastapi.core_api.security import get_user

    root = FastAPI()
    for entry in ReplicationStatusPlugin().fastapi_apps:
        entry["app"].dependency_overrides[get_user] = lambda: "test-user"
        root.mount(entry["url_prefix"], entry["app"])
    return TestClient(root)


def test_plugin_declares_app_and_browse_menu_entry():
    plugin = ReplicationStatusPlugin()
    assert plugin.name == "replication_status"
    [app] = plugin.fastapi_apps
    assert app == {"app": create_app(), "url_prefix": "/replication", "name": "Replication status"}
    [view] = plugin.external_views
    assert view["destination"] == "nav"
    assert view["category"] == "browse"
    assert view["href"] == "replication/"  # relative to the UI base URL: no leading slash
    assert view["url_route"] == "replication-status"


def test_airflow_loads_and_mounts_the_plugin():
    """Airflow's plugin manager finds the plugin by its entry point and the API server's mounting serves it."""
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_plugins

    plugins, import_errors = plugins_manager._get_plugins()
    assert "include.airflow.ui.replication_status" not in import_errors
    assert "replication_status" in [plugin.name for plugin in plugins]
    root = FastAPI()
    init_plugins(root)
    assert any(getattr(route, "path", None) == URL_PREFIX for route in root.routes)


def test_status_json_lists_every_row(filled, client):
    response = client.get("/replication/api/status")
    assert response.status_code == 200
    rows = response.json()
    assert [(r["model"], r["version"], r["region"], r["state"]) for r in rows] == [
        ("churn", "3", "aws-us-west-2", "verified"),
        ("churn", "3", "gcp-europe-west1", "copying"),
        ("churn", "4", "aws-us-west-2", "pending"),
        ("fraud", "12", "azure-westeurope", "failed"),
    ]
    verified, copying, pending, failed = rows
    assert verified["sha256"] == SHA
    assert verified["bytes"] == 3 * 2**20
    assert 42 <= verified["lag_seconds"] < 60
    assert datetime.fromisoformat(verified["verified_at"]).utcoffset() == timedelta(0)
    assert copying["run_id"] == "run-1"
    assert copying["lag_seconds"] is None
    assert pending["source_region"] == "aws-us-east-1"
    assert failed["message"] == EVIL


def test_status_json_filters_by_model_and_version(filled, client):
    rows = client.get("/replication/api/status", params={"model": "churn", "version": "3"}).json()
    assert {row["region"] for row in rows} == {"aws-us-west-2", "gcp-europe-west1"}


def test_page_shows_every_row_and_escapes_messages(filled, client):
    response = client.get("/replication/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<meta http-equiv="refresh" content="10">' in page
    assert "4 replicas, 1 failed, 1 copying, 1 pending, 1 verified" in page
    for text in ("churn", "fraud", "aws-us-west-2", "gcp-europe-west1", "azure-westeurope", SHA[:16]):
        assert text in page
    for state in ("verified", "copying", "pending", "failed"):  # the states of the rows filled in
        assert f'<span class="badge" style="background:{BADGE_COLOURS[state]}">{state}</span>' in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; checksum mismatch &amp; retry" in page
    assert "<script" not in page
    assert "3.0" in page  # MiB of the verified replica
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)  # self-contained: nothing from elsewhere
    assert client.get("/replication/api/status").status_code == 200  # where its relative "api/status" link goes


def test_page_sorts_by_a_column(filled, client):
    page = client.get("/replication/", params={"sort": "state", "desc": "false"}).text
    assert page.index("fraud") < page.index("gcp-europe-west1") < page.index(">churn</td><td>4<")
    assert '<a href="?sort=state&amp;desc=true">State ▲</a>' in page
    page = client.get("/replication/", params={"sort": "lag", "desc": "true"}).text
    assert page.index(SHA[:16]) < page.index("fraud")  # the only lag first; rows without a lag last
    assert client.get("/replication/", params={"sort": "nonsense"}).status_code == 422


def test_page_of_an_empty_store(store, client):
    page = client.get("/replication/").text
    assert "0 replicas" in page
    assert "No replication recorded yet." in page
    assert client.get("/replication/api/status").json() == []
