# AKS on Azure CNI Overlay powered by Cilium (the same eBPF dataplane as GKE Dataplane V2), which enforces the
# NetworkPolicies of k8s/base. Entra ID is the only way in: local accounts are off and Azure RBAC authorises.
resource "azurerm_kubernetes_cluster" "this" {
  # checkov:skip=CKV_AZURE_6:authorized_ip_ranges come from the required api_server_authorized_ip_ranges, validated non-empty and without 0.0.0.0/0; checkov cannot see a variable without a default.
  # checkov:skip=CKV_AZURE_115:The API server keeps a public endpoint, open only to the authorized ranges and Entra ID identities, so CI and the failover DAG in another cloud reach it without a VPN.
  # checkov:skip=CKV_AZURE_117:Node disks use platform-managed keys plus encryption at host; a disk encryption set needs a Key Vault key this module does not own.
  # checkov:skip=CKV_AZURE_172:The Key Vault secrets-store add-on is not installed: serving holds no secrets (workload identity), so there is nothing to rotate.
  name                = local.name
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  dns_prefix          = local.name
  kubernetes_version  = var.kubernetes_version
  sku_tier            = "Standard" # the financially backed API-server SLA

  automatic_upgrade_channel = "patch"
  node_os_upgrade_channel   = "NodeImage"

  oidc_issuer_enabled       = true
  workload_identity_enabled = true

  role_based_access_control_enabled = true
  local_account_disabled            = true

  azure_active_directory_role_based_access_control {
    azure_rbac_enabled     = true
    admin_group_object_ids = var.admin_group_object_ids
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.control_plane.id]
  }

  api_server_access_profile {
    authorized_ip_ranges = var.api_server_authorized_ip_ranges
  }

  # The system pool runs critical add-ons only (it is tainted CriticalAddonsOnly); serving runs on the
  # general pool and batch work on the Spot pool below. Two nodes at least, so losing one never leaves
  # CoreDNS without a node.
  default_node_pool {
    name                         = "system"
    temporary_name_for_rotation  = "systemtmp"
    vm_size                      = var.system_vm_size
    vnet_subnet_id               = azurerm_subnet.nodes.id
    zones                        = var.availability_zones
    only_critical_addons_enabled = true
    auto_scaling_enabled         = true
    min_count                    = 2
    max_count                    = 5
    max_pods                     = 110
    os_disk_type                 = "Ephemeral"
    os_disk_size_gb              = 64
    host_encryption_enabled      = true

    upgrade_settings {
      max_surge = "33%"
    }

    tags = local.tags
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
    pod_cidr            = var.pod_cidr
    service_cidr        = var.service_cidr
    dns_service_ip      = cidrhost(var.service_cidr, 10)
    load_balancer_sku   = "standard"
    outbound_type       = "loadBalancer"
  }

  azure_policy_enabled = true

  image_cleaner_enabled        = true
  image_cleaner_interval_hours = 48

  oms_agent {
    log_analytics_workspace_id      = azurerm_log_analytics_workspace.this.id
    msi_auth_for_monitoring_enabled = true
  }

  tags = local.tags

  lifecycle {
    # The cluster autoscaler owns the node count.
    ignore_changes = [default_node_pool[0].node_count]
  }

  # The control-plane identity must be able to join the subnet before the cluster is created.
  depends_on = [azurerm_role_assignment.control_plane_joins_subnet]
}

# On-demand capacity for model serving (the HPA's 3 to 20 replicas, PDB minAvailable 2).
resource "azurerm_kubernetes_cluster_node_pool" "general" {
  name                        = "general"
  temporary_name_for_rotation = "generaltmp"
  kubernetes_cluster_id       = azurerm_kubernetes_cluster.this.id
  mode                        = "User"
  vm_size                     = var.general_vm_size
  vnet_subnet_id              = azurerm_subnet.nodes.id
  zones                       = var.availability_zones
  auto_scaling_enabled        = true
  min_count                   = var.general_min_count
  max_count                   = var.general_max_count
  max_pods                    = 110
  os_disk_type                = "Ephemeral"
  os_disk_size_gb             = 128
  host_encryption_enabled     = true

  upgrade_settings {
    max_surge = "33%"
  }

  tags = local.tags

  lifecycle {
    ignore_changes = [node_count]
  }
}

# Spot capacity for interruptible batch work, scaling from zero; an evicted node is deleted, not kept
# deallocated, and the price cap is the on-demand price (-1), so capacity is lost only to eviction, never to
# price. AKS puts the label and taint below on every Spot node; declaring them keeps plans free of drift,
# and the taint keeps serving (which does not tolerate it) off these nodes.
resource "azurerm_kubernetes_cluster_node_pool" "spot" {
  name                        = "spot"
  temporary_name_for_rotation = "spottmp"
  kubernetes_cluster_id       = azurerm_kubernetes_cluster.this.id
  mode                        = "User"
  vm_size                     = var.spot_vm_size
  vnet_subnet_id              = azurerm_subnet.nodes.id
  zones                       = var.availability_zones

  priority        = "Spot"
  eviction_policy = "Delete"
  spot_max_price  = -1

  node_labels = {
    "kubernetes.azure.com/scalesetpriority" = "spot"
  }
  node_taints = ["kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]

  auto_scaling_enabled    = true
  min_count               = 0
  max_count               = var.spot_max_count
  node_count              = 0
  max_pods                = 110
  os_disk_type            = "Ephemeral"
  os_disk_size_gb         = 128
  host_encryption_enabled = true

  tags = local.tags

  lifecycle {
    ignore_changes = [node_count]
  }
}
