"""The Kubernetes manifests of the model-serving service: each overlay rendered with ``kubectl kustomize`` (offline).

Checks what a reviewer would: resources, probes, the HPA range, the PDB, the pod and container security
settings, least-privilege RBAC, default-deny networking, and each overlay's region, image and cloud settings.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from include.catalogue import DEFAULT_CATALOGUE, load_catalogue

K8S = Path(__file__).resolve().parents[1] / "k8s"
NAMESPACE = "mlp-serving"
NAME = "model-serving"
PLACEHOLDER_IMAGE = "ghcr.io/mlp/platform:latest"
# Each overlay and the registry its image must come from (the region's own).
OVERLAYS = {
    "aws-us-west-2": ".dkr.ecr.us-west-2.amazonaws.com/",
    "gcp-europe-west1": "europe-west1-docker.pkg.dev/",
    "azure-eastus": ".azurecr.io/",
}

# The connection type of a region's storage connection, by provider (include/clouds/objectstore.py).
STORAGE_CONN_TYPES = {"aws": "aws", "gcp": "google_cloud_platform", "azure": "wasb"}
# Fields of an Airflow connection, top-level or in its extra, that hold a credential.
CREDENTIAL_FIELDS = {
    "login",
    "password",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "key_path",
    "keyfile_dict",
    "key_secret_name",
    "connection_string",
    "shared_access_key",
    "sas_token",
    "client_secret",
    "kube_config",
}

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not installed: it renders the kustomizations"
)


@cache
def kustomize(directory: str) -> str:
    """The YAML ``kubectl kustomize k8s/<directory>`` prints."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize k8s/{directory} failed:\n{result.stderr}"
    return result.stdout


@cache
def render(directory: str) -> dict[tuple[str, str], dict]:
    """``kubectl kustomize k8s/<directory>`` as ``{(kind, name): object}``."""
    objects = [doc for doc in yaml.safe_load_all(kustomize(directory)) if doc]
    rendered = {(doc["kind"], doc["metadata"]["name"]): doc for doc in objects}
    assert len(rendered) == len(objects), f"k8s/{directory} renders two objects of the same kind and name"
    return rendered


def serving_container(objects: dict) -> dict:
    containers = objects["Deployment", NAME]["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["serving"]
    return containers[0]


def credential_fields(connection: dict) -> set[str]:
    """The fields of an ``AIRFLOW_CONN_*`` JSON value, top-level or in its extra, that hold a credential."""
    return CREDENTIAL_FIELDS & (set(connection) | set(connection.get("extra", {})))


def test_every_overlay_is_checked():
    assert sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir()) == sorted(OVERLAYS)


def test_every_overlay_is_a_catalogue_region():
    assert set(OVERLAYS) <= set(load_catalogue(DEFAULT_CATALOGUE).by_name)


@needs_kubectl
def test_base_renders_with_the_placeholder_image_and_no_region():
    container = serving_container(render("base"))

    assert container["image"] == PLACEHOLDER_IMAGE
    assert "--region" not in container["args"]  # an overlay must add it: the base alone does not start


@needs_kubectl
@pytest.mark.parametrize("region", OVERLAYS)
def test_everything_is_in_the_serving_namespace(region):
    objects = render(f"overlays/{region}")

    namespace = objects["Namespace", NAMESPACE]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for (kind, name), obj in objects.items():
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, f"{kind}/{name}"


@needs_kubectl
@pytest.mark.parametrize("region", OVERLAYS)
def test_serving_container_runs_the_service_for_the_overlays_region(region):
    objects = render(f"overlays/{region}")
    container = serving_container(objects)
    args = container["args"]

    assert container["command"] == ["python", "-m", "include.serving"]
    assert args[args.index("--region") + 1] == region
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert args[args.index("--port") + 1] == "8080"
    assert "--model" in args and "--version" not in args  # serving follows the rollout pointer: no version pin
    trusted_keys = args[args.index("--trusted-keys") + 1]
    pod = objects["Deployment", NAME]["spec"]["template"]["spec"]
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == trusted_keys]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert mount["readOnly"] is True and volume["configMap"]["name"] == "mlp-trusted-keys"
    assert {"name": "MLP_REGION", "value": region} in container["env"]
    assert container["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]
    assert args[args.index("--metrics-port") + 1] == "9090"
    assert container["image"] != PLACEHOLDER_IMAGE and OVERLAYS[region] in container["image"]
    assert not container["image"].endswith(":latest")
    assert (
        objects["Deployment", NAME]["spec"]["replicas"]
        >= objects["HorizontalPodAutoscaler", NAME]["spec"]["minReplicas"]
    )


@needs_kubectl
@pytest.mark.parametrize("region", OVERLAYS)
def test_storage_connection_is_the_catalogues_and_holds_no_key(region):
    container = serving_container(render(f"overlays/{region}"))
    catalogue_region = load_catalogue(DEFAULT_CATALOGUE).region(region)
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    connections = [name for name in env if name.startswith("AIRFLOW_CONN_")]

    assert connections == [f"AIRFLOW_CONN_{catalogue_region.connections.storage.upper()}"]
    connection = json.loads(env[connections[0]])
    assert connection["conn_type"] == STORAGE_CONN_TYPES[catalogue_region.provider]
    assert not credential_fields(connection)  # the pods authenticate with workload identity
    assert "envFrom" not in container


@needs_kubectl
@pytest.mark.parametrize("region", OVERLAYS)
def test_resources_and_probes(region):
    container = serving_container(render(f"overlays/{region}"))

    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"


@needs_kubectl
@pytest.mark.parametrize("region", OVERLAYS)
def test_pod_security(region):
    objects = render(f"overlays/{region}")
    pod = objects["Deployment", NAME]["spec"]["template"]["spec"]
    container = serving_container(objects)
    security = container["securityContext"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in security
    volumes = {v["name"]: v for v in pod["volumes"]}
    tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in volumes[tmp["name"]]
    assert pod["automountServiceAccountToken"] is False


@needs_kubectl
@pytest.mark.parametrize("region", OVERLAYS)
def test_serving_tokens_come_from_a_secret_mounted_read_only(region):
    """``--token-file`` is in the Secret mlp-serving-tokens, mounted read-only as a directory (no subPath, so
    a rotation reaches the pods); no token is in the manifests."""
    objects = render(f"overlays/{region}")
    container = serving_container(objects)
    token_file = Path(container["args"][container["args"].index("--token-file") + 1])
    pod = objects["Deployment", NAME]["spec"]["template"]["spec"]
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == str(token_file.parent)]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert mount["readOnly"] is True and "subPath" not in mount
    assert volume["secret"]["secretName"] == "mlp-serving-tokens"
    assert volume["secret"]["items"] == [{"key": "tokens", "path": token_file.name}]
    assert volume["secret"]["defaultMode"] == 0o440  # readable by the pod's group 0, by nobody else
    assert not [kind for kind, _ in objects if kind == "Secret"]


@needs_kubectl
@pytest.mark.parametrize("region", OVERLAYS)
def test_metrics_are_reachable_from_the_monitoring_namespace_only(region):
    """/metrics is on 9090 alone (``--metrics-port``); only the ClusterIP Service model-serving-metrics has
    9090 (the load-balanced Service never does), and the only ingress rule for it admits ``monitoring``."""
    objects = render(f"overlays/{region}")
    container = serving_container(objects)
    assert container["args"][container["args"].index("--metrics-port") + 1] == "9090"
    annotations = objects["Deployment", NAME]["spec"]["template"]["metadata"]["annotations"]
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == ("9090", "/metrics")
    assert {p["targetPort"] for p in objects["Service", NAME]["spec"]["ports"]} == {"http"}
    metrics_service = objects["Service", "model-serving-metrics"]["spec"]
    assert metrics_service.get("type", "ClusterIP") == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in metrics_service["ports"]] == [(9090, "metrics")]
    rules = [
        rule for (kind, _), obj in objects.items() if kind == "NetworkPolicy" for rule in obj["spec"].get("ingress", [])
    ]
    [metrics_rule] = [rule for rule in rules if {"port": 9090, "protocol": "TCP"} in rule["ports"]]
    assert metrics_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert metrics_rule["ports"] == [{"port": 9090, "protocol": "TCP"}]


@needs_kubectl
@pytest.mark.parametrize("region", OVERLAYS)
def test_service_hpa_and_pdb_select_the_serving_pods(region):
    objects = render(f"overlays/{region}")
    pod_labels = objects["Deployment", NAME]["spec"]["template"]["metadata"]["labels"]
    service = objects["Service", NAME]["spec"]
    hpa = objects["HorizontalPodAutoscaler", NAME]
    pdb = objects["PodDisruptionBudget", NAME]["spec"]

    assert service["selector"].items() <= pod_labels.items()
    expected_port = 443 if region == "aws-us-west-2" else 80  # the NLB terminates TLS; elsewhere the cloud's proxy
    assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [(expected_port, "http")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    ]
    assert pdb["minAvailable"] == 2
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()


@needs_kubectl
@pytest.mark.parametrize("region", OVERLAYS)
def test_rbac_is_read_only_and_bound_to_the_serving_account(region):
    objects = render(f"overlays/{region}")
    roles = [obj for (kind, _), obj in objects.items() if kind in ("Role", "ClusterRole")]
    bindings = [obj for (kind, _), obj in objects.items() if kind in ("RoleBinding", "ClusterRoleBinding")]

    assert objects["Deployment", NAME]["spec"]["template"]["spec"]["serviceAccountName"] == NAME
    assert ("ServiceAccount", NAME) in objects
    assert [r["kind"] for r in roles] == ["Role"]
    for rule in roles[0]["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert "*" not in rule["resources"] and "secrets" not in rule["resources"]
    assert [b["kind"] for b in bindings] == ["RoleBinding"]
    assert bindings[0]["roleRef"]["name"] == roles[0]["metadata"]["name"]
    assert bindings[0]["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]


@needs_kubectl
@pytest.mark.parametrize("region", OVERLAYS)
def test_network_is_default_deny_with_serving_dns_and_https_only(region):
    objects = render(f"overlays/{region}")
    policies = {name: obj["spec"] for (kind, name), obj in objects.items() if kind == "NetworkPolicy"}

    assert policies.pop("default-deny") == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ingress_ports = [p for spec in policies.values() for rule in spec.get("ingress", []) for p in rule["ports"]]
    assert ingress_ports == [{"port": 8080, "protocol": "TCP"}, {"port": 9090, "protocol": "TCP"}]
    for name, spec in policies.items():
        for rule in spec.get("egress", []):
            ports = {(p["port"], p["protocol"]) for p in rule["ports"]}
            if "to" not in rule:  # to anywhere: only DNS and HTTPS
                assert ports <= {(53, "UDP"), (53, "TCP"), (443, "TCP")}, name
            else:  # to named addresses only (the GKE metadata server)
                assert all(peer["ipBlock"]["cidr"].endswith("/32") for peer in rule["to"]), name


@needs_kubectl
def test_aws_overlay_uses_an_nlb_and_irsa():
    objects = render("overlays/aws-us-west-2")
    service = objects["Service", NAME]
    annotations = service["metadata"]["annotations"]

    assert objects["ServiceAccount", NAME]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam::"
    )
    assert service["spec"]["type"] == "LoadBalancer"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-type"] == "external"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-healthcheck-path"] == "/ready"


@needs_kubectl
def test_aws_nlb_serves_tls_on_443_only():
    """The catalogue says https: the NLB terminates TLS on 443 with an ACM certificate, and has no port 80."""
    service = render("overlays/aws-us-west-2")["Service", NAME]
    annotations = service["metadata"]["annotations"]
    prefix = "service.beta.kubernetes.io/aws-load-balancer-"
    assert annotations[prefix + "ssl-cert"].startswith("arn:aws:acm:us-west-2:")
    assert annotations[prefix + "ssl-ports"] == "443"
    assert annotations[prefix + "backend-protocol"] == "tcp"
    assert annotations[prefix + "ssl-negotiation-policy"].startswith("ELBSecurityPolicy-TLS13")
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("https", 443)]
    assert (
        load_catalogue(DEFAULT_CATALOGUE.with_name("regions.example-cloud.yaml"))
        .region("aws-us-west-2")
        .serving_endpoint.startswith("https://")
    )


@needs_kubectl
def test_gcp_overlay_uses_workload_identity_and_a_neg():
    objects = render("overlays/gcp-europe-west1")
    service = objects["Service", NAME]

    account = objects["ServiceAccount", NAME]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert account.endswith(".iam.gserviceaccount.com")
    neg = json.loads(service["metadata"]["annotations"]["cloud.google.com/neg"])
    assert set(neg["exposed_ports"]) == {"80"}
    assert service["spec"]["type"] == "ClusterIP"
    assert ("NetworkPolicy", "model-serving-gke-metadata") in objects


@needs_kubectl
def test_azure_overlay_uses_workload_identity_and_an_internal_load_balancer():
    objects = render("overlays/azure-eastus")
    service = objects["Service", NAME]
    pod_labels = objects["Deployment", NAME]["spec"]["template"]["metadata"]["labels"]

    assert "azure.workload.identity/client-id" in objects["ServiceAccount", NAME]["metadata"]["annotations"]
    assert pod_labels["azure.workload.identity/use"] == "true"
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"]["service.beta.kubernetes.io/azure-load-balancer-internal"] == "true"
