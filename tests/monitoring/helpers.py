"""What the monitoring tests share: the manifests' paths, the alert rules, the dashboard's expressions, and the
metric names a PromQL expression reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING = REPO_ROOT / "k8s" / "monitoring"
RULES_FILE = MONITORING / "prometheus-rules.yaml"
DASHBOARD_FILE = MONITORING / "grafana-dashboard.json"
PROMTOOL = REPO_ROOT / ".venv-tools" / "bin" / "promtool"

# Prometheus' own series: every scrape target's `up`.
PROMETHEUS_SERIES = {"up"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_GROUPINGS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGES = re.compile(r"\[[^\]]*\]")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def rule_spec() -> dict:
    """The ``spec`` of the PrometheusRule: a Prometheus rules file."""
    return yaml.safe_load(RULES_FILE.read_text())["spec"]


def alert_rules() -> list[dict]:
    return [rule for group in rule_spec()["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text())


def dashboard_expressions() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def metric_names(expression: str) -> set[str]:
    """The series names a PromQL expression reads: names that are not functions, keywords or labels."""
    text = _STRINGS.sub('""', expression)
    text = _MATCHERS.sub("", text)
    text = _GROUPINGS.sub("", text)
    text = _RANGES.sub("", text)
    names = set()
    for match in _NAME.finditer(text):
        following = text[match.end() :].lstrip()
        if not following.startswith("(") and match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names
