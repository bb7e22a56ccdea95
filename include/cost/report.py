"""The daily cost report: one JSON document of figures and one self-contained HTML page drawn from it.

``build_report`` turns FOCUS rows and the catalogue's cost settings into a JSON-serialisable dict (the rules
are those of ``include.cost.analysis``); ``render_html`` draws that dict as a single page with inline SVG
charts and no external resources, so it opens offline, from the object store or inside the Airflow UI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from html import escape

import pandas as pd

from include.catalogue import Catalogue, CostConfig
from include.cost import analysis
from include.cost.analysis import Utilisation, day_range
from include.cost.focus import FOCUS_VERSION, PROVIDER_NAMES
from include.errors import CostDataError

PERIOD_DAYS = 90  # the daily series and the chart
TOP_SERVICES = 10
PROVIDER_ORDER = ("aws", "gcp", "azure")
PROVIDER_COLOURS = {"aws": "#ff9900", "gcp": "#34a853", "azure": "#0078d4"}
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


# ---------------------------------------------------------------------------------------------------------------
# The JSON report


def build_report(
    focus: pd.DataFrame,
    day: date,
    cost: CostConfig,
    catalogue: Catalogue,
    utilisation: Mapping | None = None,
) -> dict:
    """The report for ``day`` from FOCUS rows covering (at least) the 90 days ending on it.

    Rows after ``day`` are ignored. Trends, totals by day, movers and anomalies are on EffectiveCost; the
    month to date, the forecast and budgets on BilledCost (see ``include.cost.analysis``). A provider with no
    rows on a day has no figure for it (null in the series, named in ``data_notes``), never a zero. Rows in
    a currency other than ``cost.reporting_currency`` raise ``CostDataError``. ``utilisation`` is in either
    form ``analysis.parse_utilisation`` reads.
    """
    currency = analysis.billing_currency(focus)
    if currency is not None and currency != cost.reporting_currency:
        raise CostDataError(f"FOCUS rows are in {currency}, the reporting currency is {cost.reporting_currency}")
    daily = analysis.daily_costs(focus)
    notes = []
    later = daily["day"] > day
    if later.any():
        notes.append(f"{int(later.sum())} daily figure(s) after {day} are left out of this report.")
        daily = daily[~later]
    days = day_range(day - timedelta(days=PERIOD_DAYS - 1), day)
    known = analysis.days_with_data(daily)
    providers = _providers(cost, catalogue, daily)
    notes += _coverage_notes(providers, known, days, day, cost.start_date)
    notes += _estimated_notes(daily[daily["day"].isin(days)])

    totals = _day_totals(daily, day, providers, known)
    month = _month_to_date(daily, day, providers)
    savings = _savings(cost, catalogue, analysis.parse_utilisation(utilisation or {}))
    notes += [
        f"Right-sizing: no utilisation for {row['workload']} in {row['region']}; not analysed."
        for row in savings["right_sizing"]
        if row["status"] == "no_data"
    ]
    found = analysis.anomalies(daily, day, cost.anomalies)
    budgets = analysis.budget_status(daily, cost.budgets, day, cost.budget_alert_percents, cost.reporting_currency)
    alerts = [status["alert"] for status in budgets if status["alert"]]
    alerts += [analysis.anomaly_alert(anomaly, cost.reporting_currency) for anomaly in found]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "day": day.isoformat(),
        "currency": cost.reporting_currency,
        "focus_version": FOCUS_VERSION,
        "cost_basis": {"trends": "EffectiveCost", "budgets": "BilledCost"},
        "headline": _headline(totals, month, budgets, savings, found),
        "totals": totals,
        "month_to_date": month,
        "series": _series(daily, days, providers, known, cost),
        "movers": analysis.top_movers(daily, day),
        "savings": savings,
        "anomalies": found,
        "budgets": {"alert_percents": sorted(set(cost.budget_alert_percents)), "items": budgets},
        "alerts": alerts,
        "data_notes": notes,
    }


def _providers(cost: CostConfig, catalogue: Catalogue, daily: pd.DataFrame) -> list[str]:
    """Providers expected to have data (configured sources, else the catalogue's clouds) and any that do."""
    expected = {p for p in PROVIDER_ORDER if getattr(cost.sources, p) is not None}
    expected = expected or {region.provider for region in catalogue.regions}
    present = set(daily["provider"])
    return [p for p in PROVIDER_ORDER if p in expected | present] + sorted(present - set(PROVIDER_ORDER))


def _ranges(days: list[date]) -> str:
    """Consecutive days as ranges: ``2026-11-03 to 2026-11-05, 2026-11-09``."""
    spans: list[list[date]] = []
    for current in sorted(days):
        if spans and current - spans[-1][1] == timedelta(days=1):
            spans[-1][1] = current
        else:
            spans.append([current, current])
    return ", ".join(str(a) if a == b else f"{a} to {b}" for a, b in spans)


def _coverage_notes(
    providers: list[str], known: dict[str, set[date]], days: list[date], day: date, start: date
) -> list[str]:
    notes = []
    for provider in providers:
        provider_days = known.get(provider, set())
        if day not in provider_days:
            notes.append(f"No {provider} data for {day}: its figures for the day are missing, not zero.")
        missing = [d for d in days if d >= start and d != day and d not in provider_days]
        if missing:
            notes.append(f"No {provider} data for {_ranges(missing)}: shown as gaps, not zero.")
    return notes


def _estimated_notes(daily: pd.DataFrame) -> list[str]:
    estimated = daily[daily["estimated"]]
    return [
        f"{provider} figures for {_ranges(list(set(rows['day'])))} are estimated by the source and may be restated."
        for provider, rows in estimated.groupby("provider")
    ]


def _sums(frame: pd.DataFrame, keys: list[str]) -> list[dict]:
    """Billed and effective sums per ``keys``, largest effective first."""
    grouped = frame.groupby(keys, as_index=False)[["billed_cost", "effective_cost"]].sum()
    grouped = grouped.sort_values(["effective_cost", *keys], ascending=[False] + [True] * len(keys))
    return [
        {key: row[key] for key in keys}
        | {"billed": float(row["billed_cost"]), "effective": float(row["effective_cost"])}
        for row in grouped.to_dict("records")
    ]


def _day_totals(daily: pd.DataFrame, day: date, providers: list[str], known: dict[str, set[date]]) -> dict:
    rows = daily[daily["day"] == day]
    with_data = [p for p in providers if day in known.get(p, set())]
    return {
        "billed": float(rows["billed_cost"].sum()) if with_data else None,
        "effective": float(rows["effective_cost"].sum()) if with_data else None,
        "providers_with_data": with_data,
        "providers_missing": [p for p in providers if p not in with_data],
        "by_provider": _sums(rows, ["provider"]),
        "by_region": _sums(rows, ["provider", "region"]),
        "by_service": _sums(rows, ["provider", "service"]),
    }


def _month_to_date(daily: pd.DataFrame, day: date, providers: list[str]) -> dict:
    """Billed and effective month to date, and the forecast: the sum of each provider's (null if any is null)."""
    month = daily[daily["day"].isin(day_range(day.replace(day=1), day))]
    by_provider = [
        {"provider": provider}
        | analysis.month_forecast(daily, day, provider)
        | {"effective": float(month.loc[month["provider"] == provider, "effective_cost"].sum())}
        for provider in providers
    ]
    forecasts = [row["forecast"] for row in by_provider]
    return {
        "month": f"{day:%Y-%m}",
        "through": day.isoformat(),
        "billed": float(month["billed_cost"].sum()),
        "effective": float(month["effective_cost"].sum()),
        "forecast": None if None in forecasts else float(sum(forecasts)),
        "by_provider": by_provider,
        "by_region": _sums(month, ["provider", "region"]),
    }


def _series(
    daily: pd.DataFrame, days: list[date], providers: list[str], known: dict[str, set[date]], cost: CostConfig
) -> dict:
    """Effective cost per day over the period, per provider and per (provider, region); null where unknown.

    ``anomaly_marks`` are the anomalies of every day of the period (the rules of ``analysis.anomalies``).
    """
    period = daily[daily["day"].isin(days)]

    def values(rows: pd.DataFrame, provider: str) -> list[float | None]:
        per_day = rows.groupby("day")["effective_cost"].sum()
        return [float(per_day.get(d, 0.0)) if d in known.get(provider, set()) else None for d in days]

    marks = []
    for current in days:
        if any(current in known.get(p, set()) for p in providers):
            marks += analysis.anomalies(period, current, cost.anomalies)
    return {
        "days": [d.isoformat() for d in days],
        "by_provider": [{"provider": p, "values": values(period[period["provider"] == p], p)} for p in providers],
        "by_region": [
            {"provider": provider, "region": region, "values": values(rows, provider)}
            for (provider, region), rows in period.groupby(["provider", "region"])
        ],
        "anomaly_marks": [
            {key: mark[key] for key in ("day", "provider", "region", "service", "cost", "expected", "excess")}
            for mark in marks
        ],
    }


def _savings(cost: CostConfig, catalogue: Catalogue, utilisation: dict[tuple[str, str], Utilisation]) -> dict:
    providers = analysis.region_providers(catalogue)
    spot = analysis.spot_candidates(cost.workloads, cost.unit_prices, cost.spot_discount, providers)
    sizing = analysis.right_sizing(cost.workloads, utilisation, cost.unit_prices, providers, cost.spot_discount)
    return {
        "spot_discount": cost.spot_discount,
        "spot": spot,
        "right_sizing": sizing,
        "totals": analysis.savings_total(spot, sizing, cost.spot_discount),
    }


def _headline(totals: dict, month: dict, budgets: list[dict], savings: dict, found: list[dict]) -> dict:
    with_forecast = [b for b in budgets if b["forecast_percent"] is not None]
    worst = max(with_forecast, key=lambda b: b["forecast_percent"], default=None)
    return {
        "day_cost": totals["effective"],
        "day_billed": totals["billed"],
        "month_to_date": month["billed"],
        "forecast": month["forecast"],
        "budgets": len(budgets),
        "budgets_forecast_over": sum(1 for b in with_forecast if b["forecast_percent"] >= 100),
        "worst_budget": None
        if worst is None
        else {key: worst[key] for key in ("provider", "region", "monthly", "forecast", "forecast_percent")},
        "savings_monthly": savings["totals"]["monthly"],
        "anomalies": len(found),
    }


# ---------------------------------------------------------------------------------------------------------------
# The HTML page

STYLE = """
:root { --ink: #111827; --muted: #6b7280; --line: #e5e7eb; --bad: #b91c1c; --good: #15803d; --warn: #b45309; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: var(--ink);
       background: #f9fafb; }
main { max-width: 1040px; margin: 0 auto; padding: 1.25rem; }
h1 { font-size: 1.4rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 0 0 .6rem; }
.sub { color: var(--muted); margin: .15rem 0 1rem; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: .75rem; margin-bottom: 1rem; }
.card, section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: .9rem 1rem; }
section { margin-bottom: 1rem; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 1.7rem; font-weight: 650; font-variant-numeric: tabular-nums; margin: .2rem 0; }
.card .note { color: var(--muted); font-size: 12.5px; }
.card.bad .value { color: var(--bad); }
.card.good .value { color: var(--good); }
.alerts { list-style: none; padding: 0; margin: 0 0 1rem; }
.alerts li { border-left: 4px solid var(--warn); background: #fffbeb; padding: .45rem .7rem; margin-bottom: .35rem;
             border-radius: 4px; }
.alerts li.critical { border-color: var(--bad); background: #fef2f2; }
.alerts li.info { border-color: #2563eb; background: #eff6ff; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.grid2 section { margin-bottom: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .3rem .5rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: middle; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.name { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.up { color: var(--bad); } .down { color: var(--good); }
.dot { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .35rem;
       vertical-align: -1px; }
.legend span { margin-right: 1rem; font-size: 12.5px; }
.badge { border-radius: 9999px; padding: .05rem .5rem; font-size: 11.5px; font-weight: 600; color: #fff;
         background: var(--bad); margin-right: .25rem; white-space: nowrap; }
.empty { color: var(--muted); }
ul.notes { margin: 0; padding-left: 1.2rem; color: #374151; }
svg text { font: 11px system-ui, sans-serif; fill: #4b5563; }
@media (max-width: 800px) { .cards, .grid2 { grid-template-columns: 1fr 1fr; } }
"""


def money(value: float | None, currency: str) -> str:
    """``$1,234.56`` (or ``1,234.56 CHF`` for a currency without a symbol); ``n/a`` for no figure."""
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    amount = f"{abs(value):,.2f}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def _short_money(value: float, currency: str) -> str:
    """Axis labels: ``$1.2k``, ``$35``."""
    symbol = CURRENCY_SYMBOLS.get(currency, "")
    if abs(value) >= 1000:
        return f"{symbol}{value / 1000:,.1f}k"
    return f"{symbol}{value:,.0f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above ``value`` (the chart's top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def _provider_label(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


def _dot(provider: str) -> str:
    return f'<span class="dot" style="background:{PROVIDER_COLOURS.get(provider, "#9ca3af")}"></span>'


def _money_html(value: float | None, currency: str) -> str:
    return escape(money(value, currency))


def render_html(report: dict) -> str:
    """One self-contained HTML page of ``report``: headline cards, alerts, inline SVG charts and tables."""
    currency = report["currency"]
    day = report["day"]
    body = "\n".join(
        [
            f"<h1>Cloud cost report &middot; {escape(day)}</h1>",
            f'<p class="sub">Generated {escape(report["generated_at"])} &middot; '
            f"FOCUS {escape(report['focus_version'])} "
            f"&middot; {escape(currency)} &middot; trends on {escape(report['cost_basis']['trends'])}, budgets on "
            f"{escape(report['cost_basis']['budgets'])}</p>",
            _cards(report),
            _alerts(report["alerts"]),
            _daily_chart_section(report),
            '<div class="grid2">',
            _regions_section(report),
            _services_section(report),
            "</div>",
            _budgets_section(report),
            _movers_section(report),
            _anomalies_section(report),
            _savings_section(report),
            _notes_section(report["data_notes"]),
        ]
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cloud cost {escape(day)}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""


def _cards(report: dict) -> str:
    currency, headline = report["currency"], report["headline"]
    totals = report["totals"]
    missing = totals["providers_missing"]
    day_note = f"billed {_money_html(headline['day_billed'], currency)}"
    if missing:
        day_note += f" &middot; no data from {escape(', '.join(missing))}"
    month_day = date.fromisoformat(report["day"])
    worst = headline["worst_budget"]
    if worst is None:
        budget_note = f"{headline['budgets']} budget(s), none with a forecast"
    else:
        budget_note = (
            f"{headline['budgets_forecast_over']} of {headline['budgets']} budgets forecast over &middot; highest: "
            f"{escape(worst['provider'])} {escape(worst['region'] or 'all regions')} "
            f"at {_percent(worst['forecast_percent'])}"
        )
    over = headline["budgets_forecast_over"] > 0
    savings = report["savings"]
    resizes = sum(1 for row in savings["right_sizing"] if row["status"] == "resize")
    cards = [
        ("", f"Cost on {escape(report['day'])}", _money_html(headline["day_cost"], currency), day_note),
        (
            "",
            "Month to date",
            _money_html(headline["month_to_date"], currency),
            f"{month_day:%B %Y}, {month_day.day} day(s) &middot; billed",
        ),
        ("bad" if over else "", "Month-end forecast", _money_html(headline["forecast"], currency), budget_note),
        (
            "good" if headline["savings_monthly"] > 0 else "",
            "Savings found",
            f"{_money_html(headline['savings_monthly'], currency)}<small>/mo</small>",
            f"{len(savings['spot'])} spot candidate(s) &middot; {resizes} right-sizing",
        ),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card {css}"><div class="label">{label}</div><div class="value">{value}</div>'
            f'<div class="note">{note}</div></div>'
            for css, label, value, note in cards
        )
        + "</div>"
    )


def _alerts(alerts: list[dict]) -> str:
    if not alerts:
        return ""
    items = "".join(f'<li class="{escape(alert["severity"])}">{escape(alert["text"])}</li>' for alert in alerts)
    return f'<ul class="alerts">{items}</ul>'


def _legend(providers: list[str]) -> str:
    return (
        '<div class="legend">'
        + "".join(f"<span>{_dot(p)}{escape(_provider_label(p))}</span>" for p in providers)
        + '<span><svg width="10" height="10"><circle cx="5" cy="5" r="4" fill="#b91c1c"/></svg> anomaly</span>'
        + '<span><span class="dot" style="background:#d1d5db"></span>no data</span></div>'
    )


def _daily_chart_section(report: dict) -> str:
    series = report["series"]
    providers = [row["provider"] for row in series["by_provider"]]
    return (
        f"<section><h2>Daily cost by cloud, last {len(series['days'])} days</h2>"
        f"{_stacked_chart(series, report['currency'])}{_legend(providers)}</section>"
    )


def _stacked_chart(series: dict, currency: str) -> str:
    """Stacked bars of each provider's daily effective cost, grey ticks for missing days, red dots for anomalies."""
    width, height, left, right, top, bottom = 1000, 270, 58, 8, 18, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    days = series["days"]
    rows = series["by_provider"]
    stacks = [sum(max(row["values"][i] or 0.0, 0.0) for row in rows) for i in range(len(days))]
    top_value = _nice_ceiling(max(stacks, default=0.0))
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.78, 1.0)

    def y(value: float) -> float:
        return top + plot_h - value / top_value * plot_h

    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Daily cost by cloud, stacked">']
    for step in range(5):
        value = top_value * step / 4
        axis_label = escape(_short_money(value, currency))
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{axis_label}</text>'
        )
    marks: dict[str, list[dict]] = {}
    for mark in series["anomaly_marks"]:
        marks.setdefault(mark["day"], []).append(mark)
    last_label = -10
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        base = 0.0
        for row in rows:
            value = row["values"][i]
            if value is None:
                parts.append(
                    f'<rect x="{x:.1f}" y="{top + plot_h + 2}" width="{bar:.1f}" height="4" fill="#d1d5db">'
                    f"<title>{escape(day)}: no {escape(row['provider'])} data</title></rect>"
                )
            elif value > 0:
                colour = PROVIDER_COLOURS.get(row["provider"], "#9ca3af")
                tooltip = f"{day} {_provider_label(row['provider'])}: {money(value, currency)}"
                parts.append(
                    f'<rect x="{x:.1f}" y="{y(base + value):.1f}" width="{bar:.1f}" '
                    f'height="{y(base) - y(base + value):.1f}" fill="{colour}"><title>{escape(tooltip)}</title></rect>'
                )
                base += value
        if day in marks:
            detail = "; ".join(
                f"{m['provider']} {m['region']} {m['service']} {money(m['cost'], currency)} "
                f"(expected {money(m['expected'], currency)})"
                for m in marks[day]
            )
            parts.append(
                f'<circle class="anomaly" cx="{x + bar / 2:.1f}" cy="{max(y(stacks[i]) - 7, top - 4):.1f}" r="4.5" '
                f'fill="#b91c1c"><title>{escape(day)} anomaly: {escape(detail)}</title></circle>'
            )
        first_of_month = day.endswith("-01")
        if (i == 0 or first_of_month or i == len(days) - 1) and i - last_label >= 6:
            anchor = "end" if i == len(days) - 1 else "start" if i == 0 else "middle"
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 8}" text-anchor="{anchor}">{escape(day[5:])}</text>'
            )
            last_label = i
    parts.append("</svg>")
    return "".join(parts)


def _sparkline(values: list[float | None], colour: str) -> str:
    """A small line of a daily series; gaps where there is no data."""
    width, height = 150, 26
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
    lines = "".join(
        f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
        for points in segments
    )
    return f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}">{lines}</svg>'


def _regions_section(report: dict) -> str:
    currency = report["currency"]
    today = {(r["provider"], r["region"]): r["effective"] for r in report["totals"]["by_region"]}
    month = {(r["provider"], r["region"]): r["billed"] for r in report["month_to_date"]["by_region"]}
    series = sorted(
        report["series"]["by_region"],
        key=lambda r: (-(today.get((r["provider"], r["region"])) or 0.0), r["provider"], r["region"]),
    )
    rows = [
        f'<tr><td class="name">{_dot(r["provider"])}{escape(r["region"])}</td>'
        f"<td>{_sparkline(r['values'], PROVIDER_COLOURS.get(r['provider'], '#6b7280'))}</td>"
        f'<td class="num">{_money_html(today.get((r["provider"], r["region"])), currency)}</td>'
        f'<td class="num">{_money_html(month.get((r["provider"], r["region"]), 0.0), currency)}</td></tr>'
        for r in series
    ]
    table = (
        '<table><thead><tr><th>Region</th><th>90 days</th><th class="num">Day</th>'
        f'<th class="num">Month (billed)</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
        if rows
        else '<p class="empty">No cost data in the period.</p>'
    )
    return f"<section><h2>Cost by region</h2>{table}</section>"


def _services_section(report: dict) -> str:
    currency = report["currency"]
    services = [s for s in report["totals"]["by_service"] if s["effective"] > 0][:TOP_SERVICES]
    if not services:
        return '<section><h2>Top services</h2><p class="empty">No cost on this day.</p></section>'
    width, row_h, label_w, value_w = 480, 24, 200, 80
    bar_w = width - label_w - value_w
    top_value = services[0]["effective"]
    parts = [f'<svg viewBox="0 0 {width} {row_h * len(services)}" width="100%" role="img" aria-label="Top services">']
    for i, service in enumerate(services):
        y = i * row_h
        length = max(service["effective"] / top_value * bar_w, 1.0)
        colour = PROVIDER_COLOURS.get(service["provider"], "#9ca3af")
        name = service["service"] if len(service["service"]) <= 28 else service["service"][:27] + "…"
        tooltip = f"{service['provider']} {service['service']}: {money(service['effective'], currency)}"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{escape(name)}</text>'
            f'<rect x="{label_w}" y="{y + 5}" width="{length:.1f}" height="{row_h - 10}" rx="2" fill="{colour}">'
            f"<title>{escape(tooltip)}</title></rect>"
            f'<text x="{width - 2}" y="{y + 16}" text-anchor="end">{_money_html(service["effective"], currency)}</text>'
        )
    parts.append("</svg>")
    return f"<section><h2>Top services on {escape(report['day'])}</h2>{''.join(parts)}</section>"


def _budgets_section(report: dict) -> str:
    currency = report["currency"]
    budgets = report["budgets"]
    if not budgets["items"]:
        return '<section><h2>Budgets</h2><p class="empty">No budgets configured (cost.budgets).</p></section>'
    rows = []
    for item in budgets["items"]:
        scope = f"{_dot(item['provider'])}{escape(item['provider'])} {escape(item['region'] or 'all regions')}"
        detail = (
            f"{_money_html(item['month_to_date'], currency)} of {_money_html(item['monthly'], currency)} "
            f"({_percent(item['percent'])}) &middot; forecast {_money_html(item['forecast'], currency)} "
            f"({_percent(item['forecast_percent'])})"
        )
        if item["missing_days"]:
            detail += f" &middot; {len(item['missing_days'])} day(s) without data"
        rows.append(
            f"<tr><td>{scope}</td><td>{_budget_bar(item, budgets['alert_percents'])}</td>"
            f'<td class="num">{detail}</td></tr>'
        )
    return (
        "<section><h2>Budgets: month to date and month-end forecast</h2>"
        f"<table><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _budget_bar(item: dict, alert_percents: list[int]) -> str:
    """Actual (solid) and forecast (light) as percent of the budget, the 100 % line and the alert thresholds."""
    width, height = 300, 22
    scale = min(max(100.0, item["percent"], item["forecast_percent"] or 0.0) * 1.08, 200.0)

    def x(percent: float) -> float:
        return min(percent, scale) / scale * width

    colour = PROVIDER_COLOURS.get(item["provider"], "#6b7280")
    actual_colour = "#b91c1c" if item["percent"] >= 100 else colour
    parts = [f'<svg class="budget" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    parts.append(f'<rect x="0" y="5" width="{width}" height="12" rx="3" fill="#f3f4f6"/>')
    if item["forecast_percent"] is not None:
        parts.append(
            f'<rect class="forecast" x="0" y="5" width="{x(item["forecast_percent"]):.1f}" height="12" rx="3" '
            f'fill="{colour}" fill-opacity=".3"><title>forecast {_percent(item["forecast_percent"])}</title></rect>'
        )
    parts.append(
        f'<rect class="actual" x="0" y="5" width="{x(item["percent"]):.1f}" height="12" rx="3" fill="{actual_colour}">'
        f"<title>actual {_percent(item['percent'])}</title></rect>"
    )
    for threshold in alert_percents:
        if threshold != 100 and threshold <= scale:
            parts.append(
                f'<line x1="{x(threshold):.1f}" x2="{x(threshold):.1f}" y1="3" y2="19" stroke="#9ca3af" '
                f'stroke-dasharray="2,2"/>'
            )
    parts.append(f'<line x1="{x(100):.1f}" x2="{x(100):.1f}" y1="1" y2="21" stroke="#111827" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def _change(value: float, currency: str) -> str:
    css = "up" if value > 0 else "down"
    arrow = "▲" if value > 0 else "▼"
    return f'<span class="{css}">{arrow} {_money_html(abs(value), currency)}</span>'


def _change_percent(value: float | None) -> str:
    return "new" if value is None else f"{value:+.0f}%"


def _movers_table(title: str, movers: list[dict], currency: str) -> str:
    if not movers:
        return f'<div><h2>{escape(title)}</h2><p class="empty">No comparable change.</p></div>'
    rows = "".join(
        f"<tr><td>{_dot(m['provider'])}{escape(m['service'])}<br><small>{escape(m['region'])}</small></td>"
        f'<td class="num">{_money_html(m["previous"], currency)}</td>'
        f'<td class="num">{_money_html(m["current"], currency)}</td>'
        f'<td class="num">{_change(m["change"], currency)}<br><small>{_change_percent(m["change_percent"])}</small>'
        "</td></tr>"
        for m in movers
    )
    return (
        f'<div><h2>{escape(title)}</h2><table><thead><tr><th>Service</th><th class="num">Before</th>'
        f'<th class="num">Now</th><th class="num">Change</th></tr></thead><tbody>{rows}</tbody></table></div>'
    )


def _movers_section(report: dict) -> str:
    movers, currency = report["movers"], report["currency"]
    return (
        '<section><div class="grid2">'
        + _movers_table("Top movers, day over day", movers["day_over_day"], currency)
        + _movers_table("Top movers, week over week (7 days)", movers["week_over_week"], currency)
        + "</div></section>"
    )


def _signal_badges(signals: list[str]) -> str:
    return "".join(f'<span class="badge">{escape(signal.replace("_", " "))}</span>' for signal in signals)


def _anomalies_section(report: dict) -> str:
    currency, found = report["currency"], report["anomalies"]
    if not found:
        return f'<section><h2>Anomalies on {escape(report["day"])}</h2><p class="empty">None.</p></section>'
    rows = "".join(
        f"<tr><td>{_dot(a['provider'])}{escape(a['service'])}<br><small>{escape(a['region'])}</small></td>"
        f"<td>{_signal_badges(a['signals'])}</td>"
        f'<td class="num">{_money_html(a["cost"], currency)}</td>'
        f'<td class="num">{_money_html(a["expected"], currency)}</td>'
        f'<td class="num up">+{_money_html(a["excess"], currency)}</td></tr>'
        for a in found
    )
    return (
        f"<section><h2>Anomalies on {escape(report['day'])}</h2><table><thead><tr><th>Service</th><th>Signals</th>"
        '<th class="num">Cost</th><th class="num">Expected</th><th class="num">Excess</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></section>"
    )


def _savings_section(report: dict) -> str:
    currency, savings = report["currency"], report["savings"]
    totals = savings["totals"]
    spot_rows = "".join(
        f"<tr><td>{escape(s['workload'])}</td><td>{_dot(s['provider'])}{escape(s['region'])}</td>"
        f'<td class="num">{s["replicas"]} x {s["cpu_request"]:g} vCPU, {s["memory_request_gib"]:g} GiB</td>'
        f'<td class="num">{_money_html(s["monthly_cost"], currency)}</td>'
        f'<td class="num down">{_money_html(s["monthly_saving"], currency)}</td></tr>'
        for s in savings["spot"]
    )
    resizes = [r for r in savings["right_sizing"] if r["status"] == "resize"]
    sizing_rows = "".join(
        f"<tr><td>{escape(r['workload'])}</td><td>{_dot(r['provider'])}{escape(r['region'])}</td>"
        f'<td class="num">{r["cpu_request"]:g} → {r["cpu_recommended"]:g} vCPU<br>'
        f"<small>uses {r['cpu_used']:g}</small></td>"
        f'<td class="num">{r["memory_request_gib"]:g} → {r["memory_recommended_gib"]:g} GiB<br>'
        f"<small>uses {r['memory_used_gib']:g}</small></td>"
        f'<td class="num down">{_money_html(r["monthly_saving"], currency)}</td></tr>'
        for r in resizes
    )
    spot = (
        '<table><thead><tr><th>Workload</th><th>Region</th><th class="num">Capacity</th>'
        '<th class="num">Cost/mo</th><th class="num">Saving/mo</th></tr></thead>'
        f"<tbody>{spot_rows}</tbody></table>"
        if spot_rows
        else '<p class="empty">No stateless, interruptible workload on on-demand capacity.</p>'
    )
    sizing = (
        '<table><thead><tr><th>Workload</th><th>Region</th><th class="num">CPU / replica</th>'
        '<th class="num">Memory / replica</th><th class="num">Saving/mo</th></tr></thead>'
        f"<tbody>{sizing_rows}</tbody></table>"
        if sizing_rows
        else '<p class="empty">No request is 20% or more above its use.</p>'
    )
    overlap = (
        f" (less {_money_html(totals['overlap_monthly'], currency)} counted in both)"
        if totals["overlap_monthly"]
        else ""
    )
    return (
        f"<section><h2>Savings found: {_money_html(totals['monthly'], currency)} a month</h2>"
        f'<p class="sub">Spot {_money_html(totals["spot_monthly"], currency)} '
        f"at a {savings['spot_discount']:.0%} discount"
        f" + right-sizing {_money_html(totals['right_sizing_monthly'], currency)}{overlap}.</p>"
        f'<h2>Move to spot capacity</h2>{spot}<h2 style="margin-top:1rem">Right-size requests</h2>{sizing}</section>'
    )


def _notes_section(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{escape(note)}</li>" for note in notes)
    return f'<section><h2>Data notes</h2><ul class="notes">{items}</ul></section>'
