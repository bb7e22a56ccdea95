"""Key properties of the GCP and Azure Terraform modules, read from their HCL.

The google and azurerm providers cannot be installed here, so ``terraform validate`` never sees these modules.
Instead every ``.tf`` file is parsed with python-hcl2, run in its own virtualenv (.venv-hcl: checkov's fork of
the library would shadow it in .venv-iac), and the tests check what a reviewer would: the network, private
nodes, workload identity, the Spot pools, the locked-down model storage and its role grants, and that the
identities match the serving overlays in k8s/.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from include.catalogue.fields import BUCKET_PATTERNS

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = REPO_ROOT / "terraform" / "modules"
HCL_PYTHON = REPO_ROOT / ".venv-hcl" / "bin" / "python"
OVERLAYS = REPO_ROOT / "k8s" / "overlays"

pytestmark = pytest.mark.skipif(
    not HCL_PYTHON.exists(), reason=".venv-hcl is missing (make install creates it): python-hcl2 parses the modules"
)

# Runs inside .venv-hcl: prints {module: {file name: parsed HCL}} as JSON, with plain strings and no comments.
PARSE_MODULES = """
import json, sys
from pathlib import Path
import hcl2

options = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
parsed = {}
for module in sys.argv[1:]:
    parsed[Path(module).name] = {}
    for path in sorted(Path(module).glob("*.tf")):
        with path.open() as tf_file:
            parsed[Path(module).name][path.name] = hcl2.load(tf_file, serialization_options=options)
json.dump(parsed, sys.stdout)
"""

REFERENCE = re.compile(r"\$\{(var|local)\.([A-Za-z0-9_]+)\}")


@dataclass
class Module:
    """One module's top-level blocks, merged across its files."""

    name: str
    resources: dict[tuple[str, str], dict]
    variables: dict[str, dict]
    locals: dict[str, Any]
    outputs: dict[str, dict]
    terraform: dict

    def resource(self, resource_type: str, name: str) -> dict:
        assert (resource_type, name) in self.resources, f"{self.name}: no {resource_type}.{name}"
        return self.resources[resource_type, name]

    def all_of(self, resource_type: str) -> dict[str, dict]:
        return {name: body for (kind, name), body in self.resources.items() if kind == resource_type}

    def resolve(self, value: Any) -> Any:
        """``value`` with ``${var.x}`` (by its default) and ``${local.y}`` references substituted where known."""
        if not isinstance(value, str):
            return value
        whole = REFERENCE.fullmatch(value)
        if whole:
            known = self._reference(*whole.groups())
            return value if known is None else self.resolve(known)

        def substitute(match: re.Match) -> str:
            known = self._reference(*match.groups())
            return match.group(0) if not isinstance(known, str) else self.resolve(known)

        return REFERENCE.sub(substitute, value)

    def _reference(self, kind: str, name: str) -> Any:
        if kind == "local":
            return self.locals.get(name)
        return self.variables.get(name, {}).get("default")


@cache
def parsed_modules() -> dict[str, Module]:
    """Both modules, parsed once per test session."""
    result = subprocess.run(
        [str(HCL_PYTHON), "-c", PARSE_MODULES, str(MODULES / "gcp"), str(MODULES / "azure")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"python-hcl2 could not parse the modules:\n{result.stderr}"
    modules = {}
    for module_name, files in json.loads(result.stdout).items():
        assert files, f"terraform/modules/{module_name} has no .tf files"
        module = Module(module_name, {}, {}, {}, {}, {})
        for parsed in files.values():
            for block in parsed.get("resource", []):
                for resource_type, named in block.items():
                    for name, body in named.items():
                        module.resources[resource_type, name] = body
            for block in parsed.get("variable", []):
                module.variables.update(block)
            for block in parsed.get("locals", []):
                module.locals.update(block)
            for block in parsed.get("output", []):
                module.outputs.update(block)
            for block in parsed.get("terraform", []):
                module.terraform.update(block)
        modules[module_name] = module
    return modules


@pytest.fixture
def gcp() -> Module:
    return parsed_modules()["gcp"]


@pytest.fixture
def azure() -> Module:
    return parsed_modules()["azure"]


def only(blocks: list[dict]) -> dict:
    """The single block of a nested block list (HCL blocks parse as lists)."""
    assert len(blocks) == 1, blocks
    return blocks[0]


def serving_identity_in_overlay(region: str) -> tuple[str, str]:
    """(namespace, service account name) the serving overlay of ``region`` annotates for workload identity."""
    namespace = yaml.safe_load((OVERLAYS / region / "kustomization.yaml").read_text())["namespace"]
    documents = yaml.safe_load_all((OVERLAYS / region / "cloud.yaml").read_text())
    accounts = [doc["metadata"]["name"] for doc in documents if doc and doc["kind"] == "ServiceAccount"]
    assert len(accounts) == 1, accounts
    return namespace, accounts[0]


# Both modules


PROVIDERS = {"gcp": ("google", "hashicorp/google", "~> 6."), "azure": ("azurerm", "hashicorp/azurerm", "~> 4.")}


@pytest.mark.parametrize("module_name", ["gcp", "azure"])
def test_required_providers_are_pinned_to_a_major_version(module_name):
    module = parsed_modules()[module_name]
    local_name, source, constraint = PROVIDERS[module_name]

    providers = {}
    for block in module.terraform["required_providers"]:
        providers.update(block)
    assert set(providers) == {local_name}
    assert providers[local_name]["source"] == source
    assert providers[local_name]["version"].startswith(constraint)
    assert module.terraform["required_version"].startswith(">=")


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed: it checks the formatting")
def test_modules_are_formatted_as_terraform_fmt_writes_them():
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-list=true", str(MODULES / "gcp"), str(MODULES / "azure")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, f"run terraform fmt -recursive on:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("module_name", ["gcp", "azure"])
def test_every_variable_and_output_is_described(module_name):
    module = parsed_modules()[module_name]

    assert module.variables and module.outputs
    for name, variable in module.variables.items():
        assert variable.get("description"), f"variable {name} has no description"
        assert variable.get("type"), f"variable {name} has no type"
    for name, output in module.outputs.items():
        assert output.get("description"), f"output {name} has no description"


# GCP


def test_gcp_subnet_has_the_pod_and_service_ranges_the_cluster_uses(gcp):
    subnet = gcp.resource("google_compute_subnetwork", "nodes")
    cluster = gcp.resource("google_container_cluster", "this")

    ranges = {gcp.resolve(r["range_name"]) for r in subnet["secondary_ip_range"]}
    assert ranges == {"pods", "services"}
    assert subnet["private_ip_google_access"] is True  # private nodes reach GCS and Artifact Registry
    assert subnet["network"] == "${google_compute_network.vpc.id}"
    assert gcp.resource("google_compute_network", "vpc")["auto_create_subnetworks"] is False
    allocation = only(cluster["ip_allocation_policy"])
    assert gcp.resolve(allocation["cluster_secondary_range_name"]) == "pods"
    assert gcp.resolve(allocation["services_secondary_range_name"]) == "services"
    assert cluster["subnetwork"] == "${google_compute_subnetwork.nodes.id}"


def test_gcp_private_nodes_get_outbound_access_through_cloud_nat(gcp):
    router = gcp.resource("google_compute_router", "nat")
    nat = gcp.resource("google_compute_router_nat", "nat")

    assert router["network"] == "${google_compute_network.vpc.id}"
    assert nat["router"] == "${google_compute_router.nat.name}"
    assert nat["source_subnetwork_ip_ranges_to_nat"] == "LIST_OF_SUBNETWORKS"
    nat_subnet = only(nat["subnetwork"])
    assert nat_subnet["name"] == "${google_compute_subnetwork.nodes.id}"
    assert nat_subnet["source_ip_ranges_to_nat"] == ["ALL_IP_RANGES"]  # nodes and pods


def test_gke_has_private_nodes_workload_identity_and_dataplane_v2(gcp):
    cluster = gcp.resource("google_container_cluster", "this")

    assert only(cluster["private_cluster_config"])["enable_private_nodes"] is True
    assert gcp.resolve(only(cluster["workload_identity_config"])["workload_pool"]) == "${var.project_id}.svc.id.goog"
    assert cluster["datapath_provider"] == "ADVANCED_DATAPATH"  # enforces NetworkPolicy
    assert only(cluster["release_channel"])["channel"] == "${var.release_channel}"
    assert gcp.variables["release_channel"]["default"] in {"RAPID", "REGULAR", "STABLE"}
    assert cluster["enable_shielded_nodes"] is True
    assert cluster["enable_legacy_abac"] is False
    assert only(only(cluster["master_auth"])["client_certificate_config"])["issue_client_certificate"] is False
    assert only(cluster["master_authorized_networks_config"])["gcp_public_cidrs_access_enabled"] is False
    assert cluster["remove_default_node_pool"] is True  # pools are managed as their own resources


def test_gke_has_an_on_demand_pool_and_a_spot_pool(gcp):
    pools = gcp.all_of("google_container_node_pool")

    spot_pools = {name for name, pool in pools.items() if only(pool["node_config"]).get("spot") is True}
    assert spot_pools == {"spot"}
    assert set(pools) - spot_pools, "serving needs on-demand nodes"
    spot = pools["spot"]
    assert only(spot["autoscaling"])["total_min_node_count"] == 0
    taint = only(only(spot["node_config"])["taint"])
    assert (taint["key"], taint["effect"]) == ("cloud.google.com/gke-spot", "NO_SCHEDULE")


def test_gke_nodes_are_shielded_and_run_as_the_least_privilege_account(gcp):
    for name, pool in gcp.all_of("google_container_node_pool").items():
        node_config = only(pool["node_config"])
        assert node_config["service_account"] == "${google_service_account.nodes.email}", name
        assert node_config["image_type"] == "COS_CONTAINERD", name
        assert only(node_config["workload_metadata_config"])["mode"] == "GKE_METADATA", name
        shielded = only(node_config["shielded_instance_config"])
        assert shielded["enable_secure_boot"] is True and shielded["enable_integrity_monitoring"] is True, name
        management = only(pool["management"])
        assert management["auto_repair"] is True and management["auto_upgrade"] is True, name

    project_roles = {grant["role"] for grant in gcp.all_of("google_project_iam_member").values()}
    assert project_roles == {"roles/container.defaultNodeServiceAccount"}


def test_gke_serving_service_account_is_bound_to_the_overlays_kubernetes_service_account(gcp):
    namespace, account = serving_identity_in_overlay("gcp-europe-west1")
    binding = gcp.resource("google_service_account_iam_member", "serving_workload_identity")

    assert binding["service_account_id"] == "${google_service_account.serving.name}"
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert gcp.resolve(binding["member"]) == f"serviceAccount:${{var.project_id}}.svc.id.goog[{namespace}/{account}]"
    serving_grant = gcp.resource("google_storage_bucket_iam_member", "serving_reads_models")
    assert serving_grant["role"] == "roles/storage.objectViewer"  # serving only reads models


def test_gcp_buckets_are_private_and_the_model_bucket_is_versioned_and_logged(gcp):
    buckets = gcp.all_of("google_storage_bucket")
    models = buckets["models"]

    for name, bucket in buckets.items():
        assert bucket["uniform_bucket_level_access"] is True, name
        assert bucket["public_access_prevention"] == "enforced", name
        assert bucket["force_destroy"] is False, name
    assert only(models["versioning"])["enabled"] is True
    assert only(models["logging"])["log_bucket"] == "${google_storage_bucket.access_logs.name}"
    public_members = {"allUsers", "allAuthenticatedUsers"}
    for name, grant in gcp.all_of("google_storage_bucket_iam_member").items():
        assert grant["member"] not in public_members, name


def test_gcp_artifact_registry_has_immutable_tags_and_only_deletes_untagged_images(gcp):
    registry = gcp.resource("google_artifact_registry_repository", "images")

    assert registry["format"] == "DOCKER"
    assert only(registry["docker_config"])["immutable_tags"] is True
    assert registry["cleanup_policy_dry_run"] is False
    deletes = [policy for policy in registry["cleanup_policies"] if policy["action"] == "DELETE"]
    assert deletes and all(only(policy["condition"])["tag_state"] == "UNTAGGED" for policy in deletes)
    assert any(policy["action"] == "KEEP" for policy in registry["cleanup_policies"])
    pull = gcp.resource("google_artifact_registry_repository_iam_member", "nodes_pull_images")
    assert pull["role"] == "roles/artifactregistry.reader"


def test_gcp_outputs_feed_the_catalogue_and_the_overlay(gcp):
    assert {
        "region",
        "project_id",
        "bucket_name",
        "cluster_name",
        "cluster_endpoint",
        "serving_service_account_email",
        "artifact_registry_url",
    } <= set(gcp.outputs)


# Azure


def test_azure_vnet_has_a_node_subnet_behind_a_network_security_group(azure):
    vnet = azure.resource("azurerm_virtual_network", "this")
    subnet = azure.resource("azurerm_subnet", "nodes")
    association = azure.resource("azurerm_subnet_network_security_group_association", "nodes")

    assert vnet["address_space"] == ["${var.vnet_cidr}"]
    assert subnet["virtual_network_name"] == "${azurerm_virtual_network.this.name}"
    assert "Microsoft.Storage" in subnet["service_endpoints"]  # the storage firewall admits the subnet
    assert association["subnet_id"] == "${azurerm_subnet.nodes.id}"


def test_aks_uses_azure_cni_with_network_policy(azure):
    network = only(azure.resource("azurerm_kubernetes_cluster", "this")["network_profile"])

    assert network["network_plugin"] == "azure"
    assert network["network_policy"] == "cilium"
    assert network["network_data_plane"] == "cilium"  # cilium network policy needs the cilium dataplane


def test_aks_has_workload_identity_and_entra_id_only_access(azure):
    cluster = azure.resource("azurerm_kubernetes_cluster", "this")

    assert cluster["oidc_issuer_enabled"] is True
    assert cluster["workload_identity_enabled"] is True
    assert cluster["local_account_disabled"] is True
    assert only(cluster["azure_active_directory_role_based_access_control"])["azure_rbac_enabled"] is True
    assert (
        only(cluster["api_server_access_profile"])["authorized_ip_ranges"] == "${var.api_server_authorized_ip_ranges}"
    )
    assert "default" not in azure.variables["api_server_authorized_ip_ranges"]  # an empty list would open it
    assert only(cluster["identity"])["type"] == "UserAssigned"
    assert only(cluster["default_node_pool"])["vnet_subnet_id"] == "${azurerm_subnet.nodes.id}"


def test_aks_serving_identity_is_federated_to_the_overlays_kubernetes_service_account(azure):
    namespace, account = serving_identity_in_overlay("azure-eastus")
    credential = azure.resource("azurerm_federated_identity_credential", "serving")

    azure.resource("azurerm_user_assigned_identity", "serving")
    assert credential["parent_id"] == "${azurerm_user_assigned_identity.serving.id}"
    assert azure.resolve(credential["subject"]) == f"system:serviceaccount:{namespace}:{account}"
    assert credential["issuer"] == "${azurerm_kubernetes_cluster.this.oidc_issuer_url}"
    assert credential["audience"] == ["api://AzureADTokenExchange"]
    assert azure.outputs["serving_identity_client_id"]["value"] == "${azurerm_user_assigned_identity.serving.client_id}"


def test_aks_has_a_spot_user_pool_with_the_labels_and_taints_aks_adds(azure):
    pools = azure.all_of("azurerm_kubernetes_cluster_node_pool")

    spot_pools = {name for name, pool in pools.items() if pool.get("priority") == "Spot"}
    assert spot_pools == {"spot"}
    assert set(pools) - spot_pools, "serving needs on-demand nodes"
    spot = pools["spot"]
    assert spot["mode"] == "User"
    assert spot["eviction_policy"] == "Delete"
    assert spot["spot_max_price"] == -1
    assert spot["node_taints"] == ["kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]
    assert spot["node_labels"] == {"kubernetes.azure.com/scalesetpriority": "spot"}
    assert spot["min_count"] == 0


def test_azure_storage_account_is_locked_down_and_versioned(azure):
    account = azure.resource("azurerm_storage_account", "models")

    assert account["min_tls_version"] == "TLS1_2"
    assert account["https_traffic_only_enabled"] is True
    assert account["allow_nested_items_to_be_public"] is False
    assert account["shared_access_key_enabled"] is False
    assert only(account["network_rules"])["default_action"] == "Deny"
    blob = only(account["blob_properties"])
    assert blob["versioning_enabled"] is True
    assert only(blob["delete_retention_policy"])["days"] == "${var.blob_soft_delete_days}"
    assert azure.variables["blob_soft_delete_days"]["default"] >= 7


def test_azure_model_container_is_private_and_a_valid_catalogue_name(azure):
    container = azure.resource("azurerm_storage_container", "models")

    assert container["container_access_type"] == "private"
    assert container["storage_account_id"] == "${azurerm_storage_account.models.id}"
    assert re.match(BUCKET_PATTERNS["azure"], azure.resolve(container["name"]))


def test_azure_storage_roles_are_scoped_to_the_model_container(azure):
    blob_roles = {
        name: grant
        for name, grant in azure.all_of("azurerm_role_assignment").items()
        if grant["role_definition_name"].startswith("Storage Blob Data")
    }

    assert {name: grant["role_definition_name"] for name, grant in blob_roles.items()} == {
        "serving_reads_models": "Storage Blob Data Reader",
        "replicators": "Storage Blob Data Contributor",
    }
    for name, grant in blob_roles.items():
        assert grant["scope"] == "${azurerm_storage_container.models.id}", name
    assert (
        blob_roles["serving_reads_models"]["principal_id"] == "${azurerm_user_assigned_identity.serving.principal_id}"
    )


def test_azure_outputs_feed_the_catalogue_and_the_overlay(azure):
    assert {
        "location",
        "container_name",
        "storage_account_url",
        "cluster_name",
        "cluster_endpoint",
        "serving_identity_client_id",
    } <= set(azure.outputs)
