"""The daily cost report's HTML page: the report dict drawn through the Jinja2 templates in ``templates/``.

The page is self-contained (inline CSS and SVG, no scripts, nothing loaded), so it opens offline, from the
object store or inside the Airflow UI. Templates autoescape every value; this module only computes what a
template cannot say simply: the charts' geometry and the figures' formatting.
"""

from __future__ import annotations

import math
from datetime import date
from functools import cache

from jinja2 import Environment

from include.cost.focus import PROVIDER_NAMES
from include.html_templates import template_environment

TOP_SERVICES = 10
PROVIDER_COLOURS = {"aws": "#ff9900", "gcp": "#34a853", "azure": "#0078d4"}
NO_PROVIDER_COLOUR = "#9ca3af"
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def money(value: float | None, currency: str) -> str:
    """``$1,234.56`` (or ``1,234.56 CHF`` for a currency without a symbol); ``n/a`` for no figure."""
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    amount = f"{abs(value):,.2f}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def short_money(value: float, currency: str) -> str:
    """Axis labels: ``$1.2k``, ``$35``."""
    symbol = CURRENCY_SYMBOLS.get(currency, "")
    if abs(value) >= 1000:
        return f"{symbol}{value / 1000:,.1f}k"
    return f"{symbol}{value:,.0f}"


def provider_label(provider: str | None) -> str | None:
    """A provider's name as FOCUS writes it (``gcp`` -> ``Google Cloud``); any other value as it is."""
    return PROVIDER_NAMES.get(provider, provider)


def percent(value: float | None) -> str:
    """``42%``, or ``n/a`` for no figure."""
    return "n/a" if value is None else f"{value:.0f}%"


def render_html(report: dict) -> str:
    """One self-contained HTML page of ``report`` (``include.cost.report.build_report``'s dict)."""
    savings = report["savings"]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            month_day=date.fromisoformat(report["day"]),
            resizes=[row for row in savings["right_sizing"] if row["status"] == "resize"],
            daily_chart=stacked_chart(report["series"], report["currency"]),
            regions=_region_rows(report),
            services=service_bars(report["totals"]["by_service"]),
            budget_bars=[budget_bar(item, report["budgets"]["alert_percents"]) for item in report["budgets"]["items"]],
        )
    )


@cache
def _environment() -> Environment:
    return template_environment(
        "include.cost",
        {
            "money": money,
            "short_money": short_money,
            "percent": percent,
            "provider_label": provider_label,
            "colour": lambda provider: PROVIDER_COLOURS.get(provider, NO_PROVIDER_COLOUR),
            "sparkline": sparkline,
            "coord": lambda value: f"{value:.1f}",  # SVG coordinates to a tenth of a unit
        },
    )


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above ``value`` (a chart's top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def stacked_chart(series: dict, currency: str) -> dict:
    """Geometry of the daily chart: per day, a stacked bar per provider or a grey tick where it has no data, a
    red dot over each day with an anomaly, and day labels at the first, the last and each first of a month."""
    width, height, left, right, top, bottom = 1000, 270, 58, 8, 18, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    days, rows = series["days"], series["by_provider"]
    stacks = [sum(max(row["values"][i] or 0.0, 0.0) for row in rows) for i in range(len(days))]
    top_value = _nice_ceiling(max(stacks, default=0.0))
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.78, 1.0)

    def y(value: float) -> float:
        return top + plot_h - value / top_value * plot_h

    marks: dict[str, list[dict]] = {}
    for mark in series["anomaly_marks"]:
        marks.setdefault(mark["day"], []).append(mark)
    chart = {
        "width": width,
        "height": height,
        "gridlines": [
            {"x1": left, "x2": width - right, "y": y(top_value * step / 4), "label": top_value * step / 4}
            for step in range(5)
        ],
        "days": [],
    }
    last_label = -10
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        column = {"day": day, "x": x, "width": bar, "shapes": [], "anomaly": None, "label": None}
        base = 0.0
        for row in rows:
            value = row["values"][i]
            if value is None:
                column["shapes"].append({"kind": "gap", "provider": row["provider"], "y": top + plot_h + 2})
            elif value > 0:
                column["shapes"].append(
                    {
                        "kind": "bar",
                        "provider": row["provider"],
                        "value": value,
                        "y": y(base + value),
                        "height": y(base) - y(base + value),
                    }
                )
                base += value
        if day in marks:
            column["anomaly"] = {"marks": marks[day], "x": x + bar / 2, "y": max(y(stacks[i]) - 7, top - 4)}
        if (i == 0 or day.endswith("-01") or i == len(days) - 1) and i - last_label >= 6:
            anchor = "end" if i == len(days) - 1 else "start" if i == 0 else "middle"
            column["label"] = {"x": x + bar / 2, "y": height - 8, "anchor": anchor, "text": day[5:]}
            last_label = i
        chart["days"].append(column)
    return chart


def sparkline(values: list[float | None], width: int = 150, height: int = 26) -> dict:
    """A small line of a daily series as polyline point lists, broken where there is no data."""
    top_value = max((v for v in values if v is not None), default=0.0) or 1.0
    step = width / max(len(values) - 1, 1)
    segments, current = [], []
    for i, value in enumerate(values):
        if value is None:
            if current:
                segments.append(current)
            current = []
        else:
            current.append(f"{i * step:.1f},{height - 2 - max(value, 0.0) / top_value * (height - 4):.1f}")
    if current:
        segments.append(current)
    return {"width": width, "height": height, "segments": [" ".join(points) for points in segments]}


def _region_rows(report: dict) -> list[dict]:
    """Each region's 90-day series with its day (effective) and month-to-date (billed) cost, costliest first."""
    today = {(r["provider"], r["region"]): r["effective"] for r in report["totals"]["by_region"]}
    month = {(r["provider"], r["region"]): r["billed"] for r in report["month_to_date"]["by_region"]}
    rows = []
    for r in report["series"]["by_region"]:
        key = (r["provider"], r["region"])
        rows.append({**r, "day_cost": today.get(key), "month": month.get(key, 0.0)})
    return sorted(rows, key=lambda r: (-(r["day_cost"] or 0.0), r["provider"], r["region"]))


def service_bars(by_service: list[dict], width: int = 480, row_h: int = 24) -> dict:
    """Geometry of the top services' horizontal bars (the day's costliest first, at most ``TOP_SERVICES``)."""
    services = [s for s in by_service if s["effective"] > 0][:TOP_SERVICES]
    label_w, value_w = 200, 80
    bar_w = width - label_w - value_w
    rows = [
        {
            **service,
            "y": i * row_h,
            "length": max(service["effective"] / services[0]["effective"] * bar_w, 1.0),
            "name": service["service"] if len(service["service"]) <= 28 else service["service"][:27] + "…",
        }
        for i, service in enumerate(services)
    ]
    return {"width": width, "height": row_h * len(rows), "row_h": row_h, "label_w": label_w, "rows": rows}


def budget_bar(item: dict, alert_percents: list[int], width: int = 300) -> dict:
    """Geometry of one budget's bar: actual and forecast as percent of the budget on a scale that shows at
    least 100 % and at most 200 %, the 100 % line and the other alert thresholds."""
    scale = min(max(100.0, item["percent"], item["forecast_percent"] or 0.0) * 1.08, 200.0)

    def x(value: float) -> float:
        return min(value, scale) / scale * width

    forecast = item["forecast_percent"]
    return {
        "width": width,
        "actual": x(item["percent"]),
        "over": item["percent"] >= 100,
        "forecast": None if forecast is None else x(forecast),
        "thresholds": [x(threshold) for threshold in alert_percents if threshold != 100 and threshold <= scale],
        "full": x(100),
    }
