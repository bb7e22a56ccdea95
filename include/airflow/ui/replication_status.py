"""Airflow UI plugin: the replication status of every model version in every region.

A small FastAPI app is mounted in the Airflow API server under ``/replication``:

* ``GET /replication/`` - an HTML table (self-contained, refreshes every 10 s, sortable by column through
  ``?sort=<column>&desc=true`` so the refresh keeps the order);
* ``GET /replication/api/status`` - the same rows as JSON, optionally filtered by ``?model=`` and ``?version=``.

"Replication status" in the Browse menu shows the page inside the Airflow UI. The rows come from the status
store behind the catalogue's ``replication.state_connection``.

Every Airflow process imports plugins, so FastAPI, the catalogue and the store are imported only when the API
server asks for the app or a request is served.
"""

from __future__ import annotations

import functools
import html
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from fastapi import FastAPI

    from include.replication.status import StatusRow

URL_PREFIX = "/replication"
REFRESH_SECONDS = 10

SortColumn = Literal["model", "version", "region", "state", "size", "lag", "updated"]
STATE_ORDER = ("corrupt", "failed", "copying", "pending", "verified")  # the sort order of the state column
STATE_RANK = {state: rank for rank, state in enumerate(STATE_ORDER)}
BADGE_COLOURS = {
    "pending": "#6b7280",
    "copying": "#2563eb",
    "verified": "#15803d",
    "failed": "#b91c1c",
    "corrupt": "#7c2d12",
}

# (query value, heading, numeric, sort key)
COLUMNS: list[tuple[SortColumn, str, bool, Callable[[StatusRow], Any]]] = [
    ("model", "Model", False, lambda row: row.model),
    ("version", "Version", False, lambda row: row.version),
    ("region", "Region", False, lambda row: row.region),
    ("state", "State", False, lambda row: STATE_RANK.get(row.state, len(STATE_RANK))),
    ("size", "MiB", True, lambda row: row.bytes),
    ("lag", "Lag s", True, lambda row: row.lag_seconds),
    ("updated", "Updated (UTC)", False, lambda row: _utc(row.updated_at)),
]

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1rem; color: #111827; }
h1 { font-size: 1.25rem; margin: 0 0 .5rem; }
p { color: #4b5563; margin: 0 0 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid #e5e7eb; text-align: left; white-space: nowrap; }
th a { color: inherit; text-decoration: none; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.detail { white-space: normal; font-family: ui-monospace, monospace; font-size: 12px; }
tr.failed td.detail, tr.corrupt td.detail { color: #b91c1c; font-family: inherit; font-size: inherit; }
.badge { color: #fff; border-radius: 9999px; padding: .1rem .55rem; font-size: 12px; font-weight: 600; }
"""


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def load_rows(model: str | None = None, version: str | None = None) -> list[StatusRow]:
    """The current status rows, read from the store of the catalogue's state connection."""
    from include.catalogue import load_catalogue
    from include.replication.status import StatusStore

    store = StatusStore.from_connection(load_catalogue().replication.state_connection)
    try:
        return store.rows(model, version)
    finally:
        store.engine.dispose()


def row_json(row: StatusRow) -> dict[str, Any]:
    """One row as JSON: every ``StatusRow`` field (times in ISO 8601, UTC) plus ``lag_seconds``."""
    data = asdict(row) | {"lag_seconds": row.lag_seconds}
    return {key: _utc(value).isoformat() if isinstance(value, datetime) else value for key, value in data.items()}


def sort_rows(rows: list[StatusRow], column: SortColumn, descending: bool) -> list[StatusRow]:
    """The rows ordered by one column; rows without a value (no size, no lag yet) always come last."""
    key = next(key for name, _, _, key in COLUMNS if name == column)
    present = [row for row in rows if key(row) is not None]
    missing = [row for row in rows if key(row) is None]
    return sorted(present, key=key, reverse=descending) + missing


def render_page(rows: list[StatusRow], sort: SortColumn = "model", descending: bool = False) -> str:
    """The status page: a summary line and one table row per (model, version, region), all HTML-escaped."""
    e = html.escape
    headings = []
    for name, heading, numeric, _ in COLUMNS:
        arrow = (" ▼" if descending else " ▲") if name == sort else ""
        link_desc = "true" if name == sort and not descending else "false"
        css = ' class="num"' if numeric else ""
        headings.append(f'<th{css}><a href="?sort={name}&amp;desc={link_desc}">{e(heading)}{arrow}</a></th>')
    headings.append("<th>sha256 / message</th>")

    body = []
    for row in sort_rows(rows, sort, descending):
        size = f"{row.bytes / 2**20:.1f}" if row.bytes is not None else ""
        lag = f"{row.lag_seconds:.0f}" if row.lag_seconds is not None else ""
        if row.state in ("failed", "corrupt") and row.message:
            detail = e(row.message)
        elif row.sha256:
            detail = f'<span title="{e(row.sha256)}">{e(row.sha256[:16])}</span>'
        else:
            detail = ""
        colour = BADGE_COLOURS.get(row.state, "#6b7280")
        body.append(
            f'<tr class="{e(row.state)}"><td>{e(row.model)}</td><td>{e(row.version)}</td>'
            f'<td title="from {e(row.source_region)}">{e(row.region)}</td>'
            f'<td><span class="badge" style="background:{colour}">{e(row.state)}</span></td>'
            f'<td class="num">{size}</td><td class="num">{lag}</td>'
            f"<td>{_utc(row.updated_at):%Y-%m-%d %H:%M:%S}</td>"
            f'<td class="detail">{detail}</td></tr>'
        )
    if not body:
        body.append(f'<tr><td colspan="{len(headings)}">No replication recorded yet.</td></tr>')

    counts = Counter(row.state for row in rows)
    summary = "".join(f", {counts[state]} {state}" for state in STATE_ORDER if counts[state])
    status_line = (
        f"{len(rows)} replica{'' if len(rows) == 1 else 's'}{summary} &middot; as of {datetime.now(UTC):%H:%M:%S} UTC, "
        f'refreshed every {REFRESH_SECONDS} s &middot; <a href="api/status">JSON</a>'
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>Replication status</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Replication status</h1>
<p>{status_line}</p>
<table>
<thead><tr>{"".join(headings)}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
</table>
</body>
</html>
"""


@functools.cache
def create_app() -> FastAPI:
    """The FastAPI app of the status page and its JSON (one per process)."""
    from fastapi.responses import HTMLResponse

    from include.airflow.ui.app import protected_app

    app = protected_app("Replication status")

    @app.get("/api/status")
    def status_json(model: str | None = None, version: str | None = None) -> list[dict[str, Any]]:
        return [row_json(row) for row in load_rows(model, version)]

    @app.get("/", response_class=HTMLResponse)
    def status_page(sort: SortColumn = "model", desc: bool = False) -> str:
        return render_page(load_rows(), sort, desc)

    return app


class ReplicationStatusPlugin(AirflowPlugin):
    """Mounts the status app and links it from the Browse menu (shown inside the UI, in an iframe)."""

    name = "replication_status"
    external_views = [
        {
            "name": "Replication status",
            "href": URL_PREFIX.lstrip("/") + "/",  # relative to the UI's base URL
            "destination": "nav",
            "category": "browse",
            "url_route": "replication-status",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:
        # A property, so that only the processes which mount the app (the API server) import FastAPI.
        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Replication status"}]
