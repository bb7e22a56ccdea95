"""The Platform view in a real Airflow API server, behind its login, and inside the Airflow UI in headless Chromium.

The emulators of the session (``local_clouds``) hold this test's own buckets, hosted zone and cost reports
(a copy of the catalogue with other names), and the state database is a SQLite file of its own, so nothing
here touches what other tests use. The state is seeded as ``tests/include/airflow/test_platform_view.py``
seeds it, plus real Route 53 weights, rollout pointers in every region's store, a cost report in the cost
store and DAG runs made through the REST API. Only the API server runs: no scheduler is needed to show runs.

The browser is Debian's ``chromium``, driven over the Chrome DevTools protocol on a websocket. The test takes
a screenshot of the view; with ``MLP_PLATFORM_SCREENSHOT=<path>`` it also keeps it there (``make
platform-screenshot`` writes ``docs/images/platform-view.png``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Generator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from include.catalogue import parse_catalogue
from include.clouds.objectstore import store_for
from include.clouds.route53 import Route53Traffic
from include.cost.report_html import render_html
from include.cost.store import report_key
from include.failover.store import FailoverStore
from include.replication.manifest import Manifest, ModelFile
from include.replication.rollout import promote
from include.replication.status import StatusStore
from localdev.airflow_local import ADMIN_USER, local_secrets
from localdev.provision import provision
from tests.include.airflow.test_platform_view import (
    AWS,
    AZURE,
    CORRUPT,
    GCP,
    MOVE_REASON,
    POINTED,
    cost_report,
    seed_failover,
    seed_replication,
)
from tests.integration.api_server import api_server_alone
from tests.integration.dns_zone import catalogue_in_fresh_zone

pytestmark = pytest.mark.integration

SCREENSHOT_ENV = "MLP_PLATFORM_SCREENSHOT"
STATE_CONN = "mlp_state_platform_view"
VIEWPORT = {"width": 1440, "height": 1500}
IFRAME_TEXT = """(() => {
  const frame = document.querySelector('iframe');
  return frame && frame.contentDocument && frame.contentDocument.body ? frame.contentDocument.body.innerText : '';
})()"""


# --- headless Chromium over the DevTools protocol --------------------------------------------------------------------


class DevTools:
    """One websocket to the browser; commands go to a page through its flat session id."""

    def __init__(self, url: str):
        import websocket

        self.socket = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result (events that arrive meanwhile are skipped)."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        self.socket.send(json.dumps(message | ({"sessionId": session} if session else {})))
        while True:
            answer = json.loads(self.socket.recv())
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]


@contextmanager
def headless_chromium(profile: Path) -> Generator[DevTools]:
    """Debian's chromium, headless, its DevTools endpoint on a free loopback port; stopped afterwards."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (.ci/run installs it on CI)")
    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            f"--user-data-dir={profile}", "about:blank"]  # fmt: skip
    log = profile.with_suffix(".log")
    with open(log, "wb") as out:
        browser = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        active = profile / "DevToolsActivePort"  # chromium writes its port and browser path here
        deadline = time.monotonic() + 30
        while not active.exists() or len(active.read_text().split()) < 2:
            if browser.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start (exit {browser.poll()}):\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        port, path = active.read_text().split()[:2]
        devtools = DevTools(f"ws://127.0.0.1:{port}{path}")
        yield devtools
        devtools.socket.close()
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()


def view_in_the_ui(devtools: DevTools, api_url: str, token: str, wanted: list[str]) -> tuple[str, bytes]:
    """Open the Platform view inside the Airflow UI logged in by the ``_token`` cookie; the text of its iframe
    once every ``wanted`` string is in it, and a PNG screenshot of the page."""
    target = devtools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = devtools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    devtools.call("Network.setCookie", {"name": "_token", "value": token, "url": api_url, "path": "/"}, session)
    devtools.call("Emulation.setDeviceMetricsOverride", VIEWPORT | {"deviceScaleFactor": 1, "mobile": False}, session)
    devtools.call("Page.navigate", {"url": f"{api_url}/plugin/platform"}, session)
    deadline = time.monotonic() + 45
    text = ""
    while not all(item in text for item in wanted):
        if time.monotonic() > deadline:
            raise AssertionError(f"the view in the UI never showed {wanted}; its iframe's text:\n{text}")
        time.sleep(0.5)
        text = devtools.call("Runtime.evaluate", {"expression": IFRAME_TEXT, "returnByValue": True}, session)
        text = text["result"].get("value") or ""
    time.sleep(1)  # the UI's own navigation finishes drawing
    png = base64.b64decode(devtools.call("Page.captureScreenshot", {"format": "png"}, session)["data"])
    return text, png


# --- the platform's state ------------------------------------------------------------------------------------------


def view_catalogue(tmp_path: Path):
    """The local catalogue with a hosted zone, buckets, container and state connection of this test's own."""
    data = catalogue_in_fresh_zone().model_dump(mode="json", exclude_none=True)
    data["replication"]["state_connection"] = STATE_CONN
    for region in data["regions"]:
        region["bucket"] = {"aws": "mlp-view-us-west-2", "gcp": "mlp-view-europe-west1", "azure": "mlp-view"}[
            region["provider"]
        ]
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return parse_catalogue(data), path


def seed_clouds(catalogue, now: datetime) -> None:
    """Route 53 after azure-eastus's failover, each region's rollout pointers, yesterday's cost report."""
    traffic = Route53Traffic(catalogue)
    traffic.ensure_baseline()
    traffic.apply({AZURE: 0}, {AWS, GCP})
    for (region, model), version in POINTED.items():
        manifest = Manifest.build(model, version, AWS, [ModelFile("model.skops", 48 * 2**20, "7d" * 32)])
        assert promote(store_for(catalogue.region(region)), manifest, "replicated")
    day = now.date() - timedelta(days=1)
    report = cost_report(catalogue, day)
    store = store_for(catalogue.cost_store_region)
    store.put_bytes(report_key(catalogue.cost.prefix, day, "json"), json.dumps(report).encode())
    store.put_bytes(report_key(catalogue.cost.prefix, day, "html"), render_html(report).encode())


def make_run(api: httpx.Client, dag_id: str, state: str, run_after: datetime) -> str:
    """A run of ``dag_id`` made through the REST API and set to ``state`` (no scheduler runs here)."""
    created = api.post(
        f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "run_after": run_after.isoformat()}
    )
    created.raise_for_status()
    run_id = created.json()["dag_run_id"]
    api.patch(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", json={"state": state}).raise_for_status()
    return run_id


# --- the test ------------------------------------------------------------------------------------------------------


def test_platform_view_behind_the_login_and_inside_the_airflow_ui(local_clouds, tmp_path, monkeypatch):
    started = time.monotonic()
    now = datetime.now(UTC)
    catalogue, catalogue_path = view_catalogue(tmp_path)
    state = {
        f"AIRFLOW_CONN_{STATE_CONN.upper()}": json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "state.db")})
    }
    for name, value in state.items():
        monkeypatch.setenv(name, value)
    provision(catalogue)  # buckets, container, the zone's traffic records, the state database's tables
    seed_replication(StatusStore.from_connection(STATE_CONN), now)
    seed_failover(FailoverStore.from_connection(STATE_CONN), now.timestamp())
    seed_clouds(catalogue, now)

    with api_server_alone(tmp_path / "platform", local_clouds.connections | state, catalogue_path) as settings:
        password = local_secrets(settings.state_dir)["admin_password"]
        login = httpx.post(f"{settings.api_url}/auth/token", json={"username": ADMIN_USER, "password": password})
        token = login.raise_for_status().json()["access_token"]
        anonymous = httpx.Client(base_url=settings.api_url, timeout=30)
        for path in ("/platform/", "/platform/api/summary"):
            assert anonymous.get(path).status_code == 401, path  # no token: no data
            assert anonymous.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403, path
        api = httpx.Client(base_url=settings.api_url, timeout=30, headers={"Authorization": f"Bearer {token}"})
        runs = {
            "failover_moves": make_run(api, "failover_moves", "success", now - timedelta(seconds=7200)),
            "model_replication": make_run(api, "model_replication", "success", now - timedelta(minutes=26)),
            "cost_report": make_run(api, "cost_report", "success", now - timedelta(hours=9)),
            "replica_repair": make_run(api, "replica_repair", "failed", now - timedelta(minutes=12)),
        }

        summary = api.get("/platform/api/summary").raise_for_status().json()
        regions = {region["name"]: region for region in summary["regions"]["items"]}
        assert summary["regions"]["dns_error"] is None
        assert {name: (r["state"], r["dns_weight"]) for name, r in regions.items()} == {
            AWS: ("HEALTHY", 100), GCP: ("DEGRADED", 100), AZURE: ("FAILOVER", 0)}  # fmt: skip
        assert regions[AZURE]["latency_record"] is False and regions[GCP]["failover_roles"] == ["SECONDARY"]
        [move] = summary["failovers"]["items"]
        assert (move["region"], move["reason"], move["weights"]) == (
            AZURE, MOVE_REASON, [{"region": AZURE, "before": 100, "after": 0}])  # fmt: skip
        models = summary["models"]
        assert models["pointer_errors"] == {}
        cells = {(item["model"], item["version"]): item["regions"] for item in models["items"]}
        assert [name for name, cell in cells["iris-classifier", "1"].items() if cell["current"]] == [AZURE]
        assert [name for name, cell in cells["iris-classifier", "2"].items() if cell["current"]] == [AWS, GCP]
        assert (
            cells["iris-classifier", "2"][AZURE]["lagging"]
            and cells["fraud-detector", "7"][AZURE]["state"] == "corrupt"
        )
        cost = summary["cost"]["report"]
        assert cost["day"] == (now.date() - timedelta(days=1)).isoformat() and len(cost["by_provider"]) == 3
        shown = {item["dag_id"]: item for item in summary["runs"]["items"]}
        for dag_id, run_id in runs.items():
            [run] = shown[dag_id]["runs"]
            assert run["run_id"] == run_id and run["run_path"].startswith(f"dags/{dag_id}/runs/")
            assert api.get(f"/{run['run_path']}").status_code == 200  # the UI serves its route for the run
        assert shown["manual_failover"]["runs"] == [] and shown["manual_failover"]["error"] is None

        page = api.get("/platform/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for text in (AWS, GCP, AZURE, "FAILOVER", "DNS weight <strong>0</strong>", "&#9679; current", "SageMaker"):
            assert text in page.text, text
        assert CORRUPT.replace("<", "&lt;").replace(">", "&gt;") in page.text and "<b>" not in page.text
        plugins = api.get("/api/v2/plugins").raise_for_status().json()["plugins"]
        views = [view for plugin in plugins for view in plugin["external_views"]]
        assert {
            "name": "Platform",
            "href": "platform/",
            "url_route": "platform",
            "nav_top_level": True,
        }.items() <= next(view for view in views if view["name"] == "Platform").items()
        assert {"Replication status", "Cost report"} <= {view["name"] for view in views}  # the two others still there
        assert api.get("/replication/api/status").status_code == 200
        assert api.get("/cost/days.json").json() == [cost["day"]]

        wanted = [AWS, GCP, AZURE, "FAILOVER", "DEGRADED", "automatic failover", "SageMaker", "cost_report"]
        with headless_chromium(tmp_path / "chromium") as devtools:
            text, png = view_in_the_ui(devtools, settings.api_url, token, wanted)
    assert "iris-classifier" in text and "fraud-detector" in text and "over the 15 min RPO" in text
    assert "DNS weight 0" in text and "Route 53 could not be read" not in text
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    (tmp_path / "platform-view.png").write_bytes(png)
    if os.environ.get(SCREENSHOT_ENV):
        Path(os.environ[SCREENSHOT_ENV]).write_bytes(png)
    print(f"platform view test: {time.monotonic() - started:.1f} s")
