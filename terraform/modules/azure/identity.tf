# The control plane's own identity, created first so it can be granted the subnet before the cluster exists
# (a system-assigned identity would only exist with the cluster).
resource "azurerm_user_assigned_identity" "control_plane" {
  name                = "${local.name}-aks"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "control_plane_joins_subnet" {
  scope                = azurerm_subnet.nodes.id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
}

# The identity the model-serving pods act as: k8s/overlays/<azure region>/cloud.yaml annotates the KSA with
# its client id (azure.workload.identity/client-id), and the federated credential below lets that KSA's
# token, issued by this cluster, be exchanged for an Entra ID token of this identity.
resource "azurerm_user_assigned_identity" "serving" {
  name                = "${var.name_prefix}-model-serving"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "serving" {
  name                = "${var.serving_namespace}-${var.serving_service_account}"
  resource_group_name = azurerm_resource_group.this.name
  parent_id           = azurerm_user_assigned_identity.serving.id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = local.serving_token_subject
}

# Serving only reads models, so it gets the reader role, and only on the model container.
resource "azurerm_role_assignment" "serving_reads_models" {
  scope                = azurerm_storage_container.models.id
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azurerm_user_assigned_identity.serving.principal_id
  principal_type       = "ServicePrincipal"
}

# The replication DAG uploads blocks, commits and deletes blobs (a copy whose checksum does not match):
# contributor on the model container, and on nothing else.
resource "azurerm_role_assignment" "replicators" {
  for_each = var.replicator_principal_ids

  scope                = azurerm_storage_container.models.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = each.value
}
