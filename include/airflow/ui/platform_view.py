"""Airflow UI plugin: the Platform view, the state of the whole platform on one page.

A FastAPI app is mounted in the Airflow API server under ``/platform``:

* ``GET /platform/`` - the page (``templates/platform.html.j2``, autoescaped, refreshed every 30 s), drawn
  from the summary below and nothing else;
* ``GET /platform/api/summary`` - the summary as JSON.

"Platform" at the top level of the Airflow UI's navigation shows the page inside the UI. The summary
(``build_summary``) has five sections, each read from one place:

* ``regions``: the catalogue's regions, their health state from the failover store, their DNS weight from
  Route 53;
* ``failovers``: the latest traffic moves the failover store recorded (what moved, when, why, who approved);
* ``models``: every model version per region from the replication status store, and whether each region's
  rollout pointer names it;
* ``cost``: the latest report the cost_report DAG stored;
* ``runs``: the latest runs of the platform's DAGs, from Airflow's REST API as the logged-in user.

A source that cannot be read puts its error in its section, and the rest is still shown. Every Airflow process
imports plugins, so FastAPI, the stores and the clouds' SDKs are imported only when a request is served.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from fastapi import FastAPI

    from include.catalogue import Catalogue, Region
    from include.clouds.route53 import TrafficState
    from include.failover.store import FailoverStore
    from include.replication.rollout import RolloutPointer
    from include.replication.status import StatusRow, StatusStore

URL_PREFIX = "/platform"
REFRESH_SECONDS = 30
FAILOVER_WINDOW_DAYS = 30  # the failover records shown are those of the last 30 days ...
FAILOVERS_SHOWN = 10  # ... at most this many, newest first
# The DAGs whose latest runs are shown, in the page's order.
PLATFORM_DAGS = (
    "model_replication",
    "replication_audit",
    "replica_repair",
    "model_rollback",
    "failover_moves",
    "manual_failover",
    "cost_report",
    "platform_wiring",
)
RUNS_SHOWN = 3
# The two other pages as routes of the Airflow UI (relative to its base URL), so they open inside the UI.
REPLICATION_STATUS_PATH = "plugin/replication-status"
COST_REPORT_PATH = "plugin/cost-report"

T = TypeVar("T")


@dataclass(frozen=True)
class Sources:
    """Where the summary reads each part; ``live_sources`` makes the real ones.

    ``traffic`` reads where Route 53 sends traffic; ``pointer`` a region's rollout pointer of a model (None: no
    version rolled out there); ``cost_report`` the latest stored cost report (None: none yet, or no ``cost:``
    section in the catalogue, see ``cost_configured``); ``dag_runs`` the newest runs of each DAG id asked for
    (as Airflow's REST API returns them, newest first) or, for a DAG whose runs cannot be read, why not.
    """

    status: StatusStore
    failover: FailoverStore
    traffic: Callable[[], TrafficState]
    pointer: Callable[[Region, str], RolloutPointer | None]
    cost_report: Callable[[], dict | None]
    dag_runs: Callable[[tuple[str, ...]], dict[str, list[dict] | str]]
    cost_configured: bool = True


def _read(read: Callable[[], T]) -> tuple[T | None, str | None]:
    """``read()``'s value and no error; or no value and the error in one line, when its source is down."""
    try:
        return read(), None
    except Exception as exc:  # noqa: BLE001 - whatever failed in one source is shown in its section
        first_line = str(exc).splitlines()[0] if str(exc) else "no message"
        return None, f"{type(exc).__name__}: {first_line}"


def iso(seconds: float) -> str:
    """Seconds since the epoch as ISO 8601 in UTC."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite returns naive datetimes, all UTC


def run_path(dag_id: str, run_id: str) -> str:
    """A run's page in the Airflow UI, relative to the UI's base URL: ``dags/<dag_id>/runs/<run_id>``."""
    return f"dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def version_key(version: str) -> list[tuple[int, int | str]]:
    """Sort key that puts version ``2`` before ``10``: runs of digits compare as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", version) if part]


def regions_section(catalogue: Catalogue, sources: Sources) -> dict[str, Any]:
    """Each region: provider, health state and since when, its DNS weight and the other records naming it."""
    records, error = _read(lambda: sources.failover.load([region.name for region in catalogue.regions]))
    traffic, dns_error = _read(sources.traffic)
    items = []
    for region in catalogue.regions:
        record = records[region.name] if records else None
        items.append(
            {
                "name": region.name,
                "provider": region.provider,
                "cloud_region": region.cloud_region,
                "primary": region.primary,
                "state": str(record.state) if record else None,
                "since": iso(record.since) if record else None,
                "reason": record.reason if record else None,
                "held": record.held if record else None,
                "dns_weight": traffic.weights.get(region.name) if traffic else None,
                "latency_record": region.name in traffic.latency_regions if traffic else None,
                "failover_roles": sorted(role for role, name in traffic.failover.items() if name == region.name)
                if traffic
                else [],
            }
        )
    return {"items": items, "error": error, "dns_error": dns_error}


def failovers_section(sources: Sources, now: float) -> dict[str, Any]:
    """The latest traffic moves, newest first: the transitions a finished move recorded (with the Route 53
    weights before and after it), what each moved, why, and the operator's approval when one was asked."""
    since = now - FAILOVER_WINDOW_DAYS * 86400
    transitions, error = _read(lambda: sources.failover.transitions(since=since))
    moves = [t for t in reversed(transitions or []) if "after" in t.evidence][:FAILOVERS_SHOWN]
    items = []
    for move in moves:
        before = move.evidence.get("before", {}).get("weights", {})
        after = move.evidence["after"].get("weights", {})
        items.append(
            {
                "region": move.region,
                "kind": "failback" if move.to_state == "HEALTHY" else "failover",
                "from_state": str(move.from_state),
                "to_state": str(move.to_state),
                "at": iso(move.at),
                "reason": move.reason,
                "weights": [
                    {"region": name, "before": before.get(name), "after": after.get(name)}
                    for name in sorted(set(before) | set(after))
                    if before.get(name) != after.get(name)
                ],
                "approval": move.evidence.get("approval"),
            }
        )
    return {"items": items, "window_days": FAILOVER_WINDOW_DAYS, "error": error}


def _cell(row: StatusRow | None, current: bool | None, rpo_seconds: float, now: float) -> dict[str, Any]:
    """One version in one region. ``current`` None: the region's rollout pointer could not be read.
    ``lagging``: verified later than the RPO after its registry event, or still pending or copying more than
    the RPO after it."""
    if row is None:
        return {"state": None, "verified": False, "current": current, "lag_seconds": None, "lagging": False,
                "message": None}  # fmt: skip
    if row.state == "verified":
        lagging = row.lag_seconds is not None and row.lag_seconds > rpo_seconds
    else:
        waiting_since = _utc(row.event_time or row.updated_at).timestamp()
        lagging = row.state in ("pending", "copying") and now - waiting_since > rpo_seconds
    return {
        "state": row.state,
        "verified": row.state == "verified",
        "current": current,
        "lag_seconds": row.lag_seconds,
        "lagging": lagging,
        "message": row.message if row.state in ("failed", "corrupt") else None,
    }


def models_section(catalogue: Catalogue, sources: Sources, now: float) -> dict[str, Any]:
    """Every model version (by model, newest version first) with, per region, its replication state and
    whether the region's rollout pointer names it (``current``)."""
    rows, error = _read(sources.status.rows)
    by_version: dict[tuple[str, str], dict[str, StatusRow]] = {}
    for row in rows or []:
        by_version.setdefault((row.model, row.version), {})[row.region] = row
    current: dict[tuple[str, str], str | None] = {}  # (region, model) -> the version its pointer names
    pointer_errors: dict[str, str] = {}
    for region in catalogue.regions:
        for model in sorted({model for model, _ in by_version}):
            pointer, pointer_error = _read(lambda region=region, model=model: sources.pointer(region, model))
            if pointer_error:
                pointer_errors[region.name] = pointer_error
                break
            current[region.name, model] = pointer.version if pointer else None
    rpo_seconds = catalogue.replication.rpo_minutes * 60
    newest_first = sorted(by_version, key=lambda key: version_key(key[1]), reverse=True)
    items = []
    for model, version in sorted(newest_first, key=lambda key: key[0]):
        regions = by_version[model, version]
        items.append(
            {
                "model": model,
                "version": version,
                "source_region": next(iter(regions.values())).source_region,
                "regions": {
                    region.name: _cell(
                        regions.get(region.name),
                        None if region.name in pointer_errors else current[region.name, model] == version,
                        rpo_seconds,
                        now,
                    )
                    for region in catalogue.regions
                },
            }
        )
    return {
        "regions": [region.name for region in catalogue.regions],
        "items": items,
        "rpo_minutes": catalogue.replication.rpo_minutes,
        "pointer_errors": pointer_errors,
        "error": error,
    }


def cost_section(sources: Sources) -> dict[str, Any]:
    """The latest cost report's day, totals per provider, anomalies and budgets (``report`` None: none yet)."""
    section: dict[str, Any] = {"configured": sources.cost_configured, "report": None, "page_path": COST_REPORT_PATH}
    report, section["error"] = _read(sources.cost_report)
    if report is not None:
        section["report"] = {
            "day": report["day"],
            "currency": report["currency"],
            "effective": report["totals"]["effective"],
            "billed": report["totals"]["billed"],
            "by_provider": report["totals"]["by_provider"],
            "providers_missing": report["totals"]["providers_missing"],
            "month_to_date": report["month_to_date"]["billed"],
            "forecast": report["month_to_date"]["forecast"],
            "anomalies": [
                {name: anomaly[name] for name in ("provider", "region", "service", "cost", "expected", "signals")}
                for anomaly in report["anomalies"]
            ],
            "budgets": [
                {
                    "provider": item["provider"],
                    "region": item.get("region"),
                    "monthly": item["monthly"],
                    "percent": item["percent"],
                    "forecast_percent": item["forecast_percent"],
                    "alert": item["alert"]["text"] if item["alert"] else None,
                    "alert_threshold": item["alert"]["threshold"] if item["alert"] else None,
                    "crossed_by": item["alert"]["crossed_by"] if item["alert"] else None,
                }
                for item in report["budgets"]["items"]
            ],
        }
    return section


def runs_section(sources: Sources) -> dict[str, Any]:
    """The latest runs of each platform DAG, each with its page in the Airflow UI."""
    found, error = _read(lambda: sources.dag_runs(PLATFORM_DAGS))
    items = []
    for dag_id in PLATFORM_DAGS if found else ():
        runs = found[dag_id]
        items.append(
            {
                "dag_id": dag_id,
                "dag_path": f"dags/{quote(dag_id, safe='')}",
                "error": runs if isinstance(runs, str) else None,
                "runs": []
                if isinstance(runs, str)
                else [
                    {
                        "run_id": run["dag_run_id"],
                        "state": run["state"],
                        "run_after": run["run_after"],
                        "run_path": run_path(dag_id, run["dag_run_id"]),
                    }
                    for run in runs[:RUNS_SHOWN]
                ],
            }
        )
    return {"items": items, "error": error}


def build_summary(catalogue: Catalogue, sources: Sources, now: float | None = None) -> dict[str, Any]:
    """The Platform view's data, JSON-ready; UI paths are relative to the Airflow UI's base URL."""
    now = time.time() if now is None else now
    return {
        "generated_at": iso(now),
        "regions": regions_section(catalogue, sources),
        "failovers": failovers_section(sources, now),
        "models": models_section(catalogue, sources, now),
        "cost": cost_section(sources),
        "runs": runs_section(sources),
        "pages": {"replication_status": REPLICATION_STATUS_PATH, "cost_report": COST_REPORT_PATH},
    }


# --- the live sources -------------------------------------------------------------------------------------------


def latest_cost_report() -> dict | None:
    """The newest report the cost_report DAG stored, or None when there is none or no ``cost:`` section."""
    import json

    from include.airflow.ui.cost_report import cost_store
    from include.cost.store import report_days, report_key

    found = cost_store()
    if found is None:
        return None
    store, prefix = found
    days = report_days(store, prefix)
    return json.loads(store.get_bytes(report_key(prefix, days[0], "json"))) if days else None


def rest_dag_runs(user: Any) -> Callable[[tuple[str, ...]], dict[str, list[dict] | str]]:
    """Reads DAG runs from Airflow's REST API (``GET /api/v2/dags/{dag_id}/dagRuns``) at ``[api] base_url``,
    with a short-lived token of ``user``, so the view shows only the runs that user may read."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.configuration import conf

    base_url = conf.get("api", "base_url", fallback="") or ""

    def dag_runs(dag_ids: tuple[str, ...]) -> dict[str, list[dict] | str]:
        import httpx

        from include.errors import quoted

        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"[api] base_url is {quoted(base_url)}, not the API server's absolute URL: set it "
                "(AIRFLOW__API__BASE_URL) so that the view can read DAG runs from the REST API"
            )
        token = get_auth_manager().generate_jwt(user, expiration_time_in_seconds=60)
        found: dict[str, list[dict] | str] = {}
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url.rstrip("/"), timeout=10, headers=headers) as api:
            for dag_id in dag_ids:
                response = api.get(
                    f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
                    params={"order_by": "-run_after", "limit": RUNS_SHOWN},
                )
                if response.status_code == 404:
                    found[dag_id] = "not in Airflow (not parsed yet, or removed)"
                elif response.status_code == 403:
                    found[dag_id] = "you may not read this DAG's runs"
                elif response.is_error:
                    found[dag_id] = f"the REST API answered HTTP {response.status_code}"
                else:
                    found[dag_id] = response.json()["dag_runs"]
        return found

    return dag_runs


def live_summary(user: Any) -> dict[str, Any]:
    """The summary from the catalogue's state database, the clouds and Airflow's REST API, as ``user``."""
    from include.catalogue import load_catalogue
    from include.clouds.objectstore import store_for
    from include.clouds.route53 import Route53Traffic
    from include.failover.store import FailoverStore
    from include.replication.rollout import read_pointer
    from include.replication.status import StatusStore
    from include.state.engine import state_engine

    catalogue = load_catalogue()
    engine = state_engine(catalogue.replication.state_connection)
    stores = functools.cache(store_for)  # one object store client per region and request
    try:
        sources = Sources(
            status=StatusStore(engine),
            failover=FailoverStore(engine),
            traffic=Route53Traffic(catalogue).read,
            pointer=lambda region, model: read_pointer(stores(region), model),
            cost_report=latest_cost_report,
            dag_runs=rest_dag_runs(user),
            cost_configured=catalogue.cost is not None,
        )
        return build_summary(catalogue, sources)
    finally:
        engine.dispose()


# --- the page ---------------------------------------------------------------------------------------------------


@functools.cache
def _templates():
    from include.cost.report_html import money, percent, provider_label
    from include.html_templates import template_environment

    return template_environment(
        "include.airflow.ui",
        {
            "money": money,
            "percent": percent,
            "provider_label": provider_label,
            "ui": lambda path: "../" + path,  # the page is at <UI base>/platform/
            "when": when,
            "seconds": lambda value: f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min",
        },
    )


def when(value: str | None) -> str:
    """An ISO 8601 time as ``2026-12-07 09:14:03`` in UTC (the page says UTC); empty for none."""
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def render_page(summary: dict[str, Any]) -> str:
    """The Platform view's HTML, drawn from ``build_summary``'s dict only; every value is HTML-escaped."""
    return _templates().get_template("platform.html.j2").render(summary=summary, refresh_seconds=REFRESH_SECONDS)


@functools.cache
def create_app() -> FastAPI:
    """The FastAPI app of the Platform view and its JSON (one per process)."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends
    from fastapi.responses import HTMLResponse

    from include.airflow.ui.app import protected_app

    app = protected_app("Platform")
    logged_in = Depends(get_user)  # the user the app's own get_user dependency resolved (FastAPI caches it)

    @app.get("/api/summary")
    def summary_json(user=logged_in) -> dict[str, Any]:
        return live_summary(user)

    @app.get("/", response_class=HTMLResponse)
    def platform_page(user=logged_in) -> str:
        return render_page(live_summary(user))

    return app


class PlatformViewPlugin(AirflowPlugin):
    """Mounts the Platform view's app and shows it at the top level of the UI's navigation (in an iframe)."""

    name = "platform_view"
    external_views = [
        {
            "name": "Platform",
            "href": URL_PREFIX.lstrip("/") + "/",  # relative to the UI's base URL
            "destination": "nav",
            "nav_top_level": True,
            "url_route": "platform",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:
        # A property, so that only the processes which mount the app (the API server) import FastAPI.
        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Platform"}]
