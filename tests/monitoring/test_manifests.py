"""k8s/monitoring rendered with ``kubectl kustomize`` (offline): the built-in kinds validated by
``kubernetes-validate --strict``, the CRDs (ServiceMonitor, PrometheusRule) checked field by field here, and the
Grafana dashboard's structure."""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache

import pytest
import yaml

from tests.monitoring.helpers import DASHBOARD_FILE, MONITORING, REPO_ROOT, RULES_FILE, dashboard

IAC_BIN = REPO_ROOT / ".venv-iac" / "bin"
KUBERNETES_VALIDATE = IAC_BIN / "kubernetes-validate"
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
EXPORTER, SERVING = "mlp-platform-exporter", "model-serving"

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl renders the kustomization")
needs_validate = pytest.mark.skipif(not KUBERNETES_VALIDATE.exists(), reason="no kubernetes-validate: make install")


@cache
def rendered() -> tuple[dict, ...]:
    """The documents ``kubectl kustomize k8s/monitoring`` prints."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(MONITORING)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return tuple(document for document in yaml.safe_load_all(result.stdout) if document)


def one(kind: str, name: str, namespace: str | None = None) -> dict:
    [document] = [
        d
        for d in rendered()
        if d["kind"] == kind
        and d["metadata"]["name"] == name
        and (namespace is None or d["metadata"]["namespace"] == namespace)
    ]
    return document


@needs_kubectl
def test_the_kustomization_renders_every_object():
    kinds = sorted((d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in rendered())
    assert kinds == [
        ("ConfigMap", "airflow", "mlp-grafana-dashboard"),
        ("Deployment", "airflow", EXPORTER),
        ("PrometheusRule", "airflow", "mlp-platform"),
        ("Service", "airflow", EXPORTER),
        ("ServiceAccount", "airflow", EXPORTER),
        ("ServiceMonitor", "airflow", EXPORTER),
        ("ServiceMonitor", "mlp-serving", SERVING),
    ]
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mlp-platform" for d in rendered())


@needs_kubectl
@needs_validate
def test_kubernetes_validate_strict_accepts_the_built_in_kinds(tmp_path):
    version = (REPO_ROOT / "k8s" / "KUBERNETES_VERSION").read_text().split()[-1]
    built_in = [d for d in rendered() if (d["apiVersion"], d["kind"]) not in CRDS]
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump_all(built_in))
    result = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--quiet", "-k", version, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, output


@needs_kubectl
def test_serving_is_scraped_with_the_bearer_token_from_its_secret():
    monitor = one("ServiceMonitor", SERVING)
    service = yaml.safe_load((REPO_ROOT / "k8s" / "base" / "service-metrics.yaml").read_text())
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert service["spec"]["type"] == "ClusterIP"  # /metrics is on no load balancer
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": {"name": "serving-token", "key": "token"}}


@needs_kubectl
def test_the_exporter_is_scraped_on_the_port_it_listens_on():
    monitor, service, deployment = (one(kind, EXPORTER) for kind in ("ServiceMonitor", "Service", "Deployment"))
    [endpoint] = monitor["spec"]["endpoints"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [port] = service["spec"]["ports"]
    assert endpoint["port"] == port["name"] == port["targetPort"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    [container_port] = container["ports"]
    assert container_port["name"] == port["name"]
    command = container["command"]
    assert command[:3] == ["python", "-m", "include.monitoring"]
    assert command[command.index("--port") + 1] == str(container_port["containerPort"])
    assert command[command.index("--host") + 1] == "0.0.0.0", "the default, 127.0.0.1, is unreachable in a pod"


@needs_kubectl
def test_the_exporter_runs_hardened_with_the_platform_settings():
    deployment = one("Deployment", EXPORTER)
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert {"secretRef": {"name": "mlp-airflow-connections"}} in container["envFrom"]
    assert {"name": "MLP_REGION_CATALOGUE", "value": "/etc/mlp/regions.yaml"} in container["env"]
    assert {"name": "catalogue", "configMap": {"name": "mlp-region-catalogue"}} in pod["volumes"]


@needs_kubectl
def test_the_rules_are_shipped_as_written():
    assert one("PrometheusRule", "mlp-platform")["spec"] == yaml.safe_load(RULES_FILE.read_text())["spec"]


@needs_kubectl
def test_the_dashboard_configmap_has_the_sidecar_label_and_the_dashboard():
    config_map = one("ConfigMap", "mlp-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"][DASHBOARD_FILE.name]) == dashboard()


def test_the_dashboard_is_valid_with_unique_panel_ids():
    board = dashboard()
    assert board["uid"] and board["title"] and 36 <= board["schemaVersion"] <= 41
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    queried = [panel for panel in board["panels"] if panel["type"] != "row"]
    for panel in queried:
        assert panel["title"] and panel["targets"], f"panel {panel['id']} has no title or no query"
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])
        assert all(target["datasource"]["uid"] == "${datasource}" for target in panel["targets"])
    titles = {panel["title"] for panel in queried}
    assert {
        "Region health state",
        "DNS weight",
        "Replication lag",
        "Replica states",
        "Failovers and breaker blocks",
        "Request rate",
        "Error ratio",
        "Latency p50 / p99",
        "Health watch heartbeat",
        "Cost anomalies",
    } <= titles
