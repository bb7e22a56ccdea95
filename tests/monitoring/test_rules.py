"""The alert rules: valid for a real promtool, unit-tested by it, the agreed alert set, and the labels and
annotations every alert needs, with a runbook that exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.monitoring.helpers import PROMTOOL, REPO_ROOT, RULES_FILE, alert_rules, rule_spec

RULE_TESTS = Path(__file__).with_name("rules-tests.yaml")
# The alert set agreed across the team, with each alert's runbook.
ALERTS = {
    "MLPReplicationLagOverRPO": "docs/runbooks/replication-lag.md",
    "MLPReplicaCorruptOrMissing": "docs/runbooks/replica-corrupt.md",
    "MLPRegionUnhealthy": "docs/runbooks/region-unhealthy.md",
    "MLPFailoverExecuted": "docs/runbooks/failover.md",
    "MLPFailoverBlockedByBreaker": "docs/runbooks/failover-blocked.md",
    "MLPServingErrorRateHigh": "docs/runbooks/serving-errors.md",
    "MLPServingLatencyHigh": "docs/runbooks/serving-latency.md",
    "MLPCostAnomaly": "docs/runbooks/cost-anomaly.md",
    "MLPBudgetBreach": "docs/runbooks/budget-breach.md",
    "MLPHealthWatchNotRunning": "docs/runbooks/health-watch-down.md",
    "MLPMonitoringTargetDown": "docs/runbooks/monitoring-down.md",
}
SEVERITIES = {"critical", "warning", "info"}
# Alerts whose expression sums over every series, so no label is left for the description to name.
WITHOUT_LABELS = {"MLPHealthWatchNotRunning"}

needs_promtool = pytest.mark.skipif(not PROMTOOL.exists(), reason=f"no promtool at {PROMTOOL}: run make install")


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def rules_dir(tmp_path) -> Path:
    """The PrometheusRule's spec as ``rules.yaml``, beside a copy of the unit tests that name it."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_spec(), sort_keys=False))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    return tmp_path


def test_the_manifest_is_a_prometheus_rule():
    document = yaml.safe_load(RULES_FILE.read_text())
    assert (document["apiVersion"], document["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert document["metadata"]["name"] and document["metadata"]["namespace"]
    assert all(group["name"] and group["rules"] for group in document["spec"]["groups"])


@needs_promtool
def test_promtool_accepts_the_rules(rules_dir):
    result = promtool("check", "rules", "rules.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in rule_spec()['groups'])} rules found" in result.stdout


@needs_promtool
def test_promtool_unit_tests_pass(rules_dir):
    result = promtool("test", "rules", RULE_TESTS.name, cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_promtool_unit_tests_fail_on_a_wrong_expectation(rules_dir):
    """The unit tests compare annotations exactly: one changed word fails them."""
    tests = rules_dir / RULE_TESTS.name
    tests.write_text(tests.read_text().replace("summary: azure-eastus is UNHEALTHY", "summary: azure-eastus is ill"))
    result = promtool("test", "rules", RULE_TESTS.name, cwd=rules_dir)
    assert result.returncode != 0 and "MLPRegionUnhealthy" in result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_not_firing():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for alert in ALERTS:
        outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == alert}
        assert outcomes == {True, False}, f"{alert}: needs a case where it fires and one where it does not"


def test_the_rules_are_exactly_the_agreed_alert_set():
    assert {rule["alert"] for rule in alert_rules()} == set(ALERTS)


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: f"{rule['alert']}-{rule['labels']['severity']}")
def test_every_alert_has_labels_annotations_and_an_existing_runbook(rule):
    labels, annotations = rule["labels"], rule["annotations"]
    assert labels["severity"] in SEVERITIES
    assert labels["team"] == "ml-platform"
    assert annotations["summary"].strip() and annotations["description"].strip()
    if rule["alert"] not in WITHOUT_LABELS:
        assert "$labels." in annotations["description"], "the description names the alert's label values"
    assert annotations["runbook"] == ALERTS[rule["alert"]]
    assert (REPO_ROOT / annotations["runbook"]).is_file(), f"{rule['alert']}: no runbook {annotations['runbook']}"
