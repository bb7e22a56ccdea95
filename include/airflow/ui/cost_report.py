"""Airflow UI plugin: the daily multi-cloud cost report, as the cost_report DAG stored it.

A small FastAPI app is mounted in the Airflow API server under ``/cost``:

* ``GET /cost/`` - the latest report (or a page saying there is none yet and how to make one);
* ``GET /cost/day/{YYYY-MM-DD}`` - the report of that day; ``.../report.json`` - its JSON;
* ``GET /cost/days`` - every report day, newest first; ``GET /cost/days.json`` - the same as JSON.

A malformed day is a 400, a day without a report a 404. Reports are read from the object store of the
catalogue's ``cost_store_region`` (``include.cost.store`` layout). Every report page gets a navigation bar
(older, newer, all reports, JSON) whose links are relative, so they work under any API server base URL.
"Cost report" in the Browse menu shows the page inside the Airflow UI.

Every Airflow process imports plugins, so FastAPI, the catalogue and the object store are imported only when
the API server asks for the app or a request is served.
"""

from __future__ import annotations

import functools
import re
from datetime import date
from html import escape
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from fastapi import FastAPI

    from include.clouds.objectstore import ObjectStore

URL_PREFIX = "/cost"
DAY_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NO_REPORT = "No report yet: run the cost_report DAG."
NOT_CONFIGURED = "Cost reporting is not configured: the region catalogue has no cost: section."
NAV_STYLE = (
    "font:14px system-ui,sans-serif;background:#111827;color:#e5e7eb;padding:.5rem 1.25rem;"
    "display:flex;gap:1.25rem;align-items:center;flex-wrap:wrap"
)
LINK_STYLE = "color:#93c5fd;text-decoration:none"


class BadDay(ValueError):
    """A day in a URL that is not a real YYYY-MM-DD date."""


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` as a date; anything else (other ISO forms, 2026-02-30) raises ``BadDay``."""
    if not DAY_FORMAT.match(text):
        raise BadDay(f"{text!r} is not a day: use YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadDay(f"{text!r} is not a calendar day") from None


def cost_store() -> tuple[ObjectStore, str] | None:
    """The object store holding reports and the cost prefix, or ``None`` if the catalogue has no cost section."""
    from include.catalogue import load_catalogue
    from include.clouds.objectstore import store_for

    catalogue = load_catalogue()
    if catalogue.cost is None:
        return None
    return store_for(catalogue.cost_store_region), catalogue.cost.prefix


def nav_bar(days: list[date], current: date | None, base: str) -> str:
    """Older and newer report (``days`` is newest first), latest, all reports and this report's JSON.

    ``base`` is the relative path from the page to the app root: ``""`` at the root, ``"../"`` under ``day/``.
    """

    def link(href: str, text: str) -> str:
        return f'<a style="{LINK_STYLE}" href="{escape(href)}">{escape(text)}</a>'

    items = []
    if current is not None:
        position = days.index(current) if current in days else None
        if position is not None and position + 1 < len(days):
            older = days[position + 1].isoformat()
            items.append(link(f"{base}day/{older}", f"‹ {older}"))
        items.append(f"<strong>Cost report {current.isoformat()}</strong>")
        if position:
            newer = days[position - 1].isoformat()
            items.append(link(f"{base}day/{newer}", f"{newer} ›"))
    items += [link(base or "./", "Latest"), link(f"{base}days", "All reports")]
    if current is not None:
        items.append(link(f"{base}day/{current.isoformat()}/report.json", "JSON"))
    return f'<nav style="{NAV_STYLE}">{"".join(f"<span>{item}</span>" for item in items)}</nav>'


def with_nav(page: str, nav: str) -> str:
    """The stored report page with ``nav`` as the first thing in its body."""
    match = re.search(r"<body[^>]*>", page)
    if match is None:
        return nav + page
    return page[: match.end()] + nav + page[match.end() :]


def message_page(title: str, text: str, nav: str) -> str:
    """A small page for what is not a report: no report yet, a missing day, the list of days."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{escape(title)}</title></head>
<body style="margin:0;font:14px system-ui,sans-serif;color:#111827">
{nav}
<main style="padding:1.25rem"><h1 style="font-size:1.25rem">{escape(title)}</h1>{text}</main>
</body>
</html>
"""


def days_page(days: list[date]) -> str:
    """Every report day, newest first, each a link to its report."""
    if not days:
        return message_page("Cost reports", f"<p>{escape(NO_REPORT)}</p>", nav_bar(days, None, ""))
    items = "".join(
        f'<li><a href="day/{day.isoformat()}">{day.isoformat()}</a> '
        f'&middot; <a href="day/{day.isoformat()}/report.json">JSON</a></li>'
        for day in days
    )
    return message_page(f"Cost reports ({len(days)})", f"<ul>{items}</ul>", nav_bar(days, None, ""))


@functools.cache
def create_app() -> FastAPI:
    """The FastAPI app of the report pages and their JSON (one per process)."""
    from fastapi import HTTPException
    from fastapi.responses import HTMLResponse, Response

    from include.airflow.ui.app import protected_app
    from include.cost.store import report_days, report_key
    from include.errors import ObjectNotFound

    app = protected_app("Cost report")

    def html_report(day: date, base: str) -> HTMLResponse:
        found = cost_store()
        if found is None:
            return HTMLResponse(message_page("Cost report", f"<p>{escape(NOT_CONFIGURED)}</p>", ""), status_code=404)
        store, prefix = found
        days = report_days(store, prefix)
        try:
            page = store.get_bytes(report_key(prefix, day, "html")).decode()
        except ObjectNotFound:
            text = f"<p>No cost report for {day.isoformat()}.</p>"
            return HTMLResponse(message_page("Cost report", text, nav_bar(days, None, base)), status_code=404)
        return HTMLResponse(with_nav(page, nav_bar(days, day, base)))

    def day_or_400(text: str) -> date:
        try:
            return parse_day(text)
        except BadDay as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

    @app.get("/", response_class=HTMLResponse)
    def latest_report() -> HTMLResponse:
        found = cost_store()
        if found is None:
            return HTMLResponse(message_page("Cost report", f"<p>{escape(NOT_CONFIGURED)}</p>", ""))
        days = report_days(*found)
        if not days:
            return HTMLResponse(message_page("Cost report", f"<p>{escape(NO_REPORT)}</p>", nav_bar(days, None, "")))
        return html_report(days[0], "")

    @app.get("/days", response_class=HTMLResponse)
    def all_days() -> str:
        found = cost_store()
        return days_page(report_days(*found) if found else [])

    @app.get("/days.json")
    def all_days_json() -> list[str]:
        found = cost_store()
        return [day.isoformat() for day in report_days(*found)] if found else []

    @app.get("/day/{day}", response_class=HTMLResponse)
    def day_report(day: str) -> HTMLResponse:
        return html_report(day_or_400(day), "../")

    @app.get("/day/{day}/report.json")
    def day_report_json(day: str) -> Response:
        wanted = day_or_400(day)
        found = cost_store()
        if found is None:
            raise HTTPException(status_code=404, detail=NOT_CONFIGURED)
        store, prefix = found
        try:
            data = store.get_bytes(report_key(prefix, wanted, "json"))
        except ObjectNotFound:
            raise HTTPException(status_code=404, detail=f"no cost report for {wanted.isoformat()}") from None
        return Response(content=data, media_type="application/json")

    return app


class CostReportPlugin(AirflowPlugin):
    """Mounts the cost report app and links it from the Browse menu (shown inside the UI, in an iframe)."""

    name = "cost_report"
    external_views = [
        {
            "name": "Cost report",
            "href": URL_PREFIX.lstrip("/") + "/",  # relative to the UI's base URL
            "destination": "nav",
            "category": "browse",
            "url_route": "cost-report",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:
        # A property, so that only the processes which mount the app (the API server) import FastAPI.
        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Cost report"}]
