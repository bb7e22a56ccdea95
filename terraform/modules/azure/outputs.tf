output "location" {
  description = "The Azure region (the catalogue's cloud_region)."
  value       = var.location
}

output "resource_group_name" {
  description = "The resource group holding the region's resources."
  value       = azurerm_resource_group.this.name
}

output "storage_account_name" {
  description = "The model storage account."
  value       = azurerm_storage_account.models.name
}

output "storage_account_url" {
  description = "Blob endpoint of the storage account: the host of the region's wasb storage connection."
  value       = azurerm_storage_account.models.primary_blob_endpoint
}

output "container_name" {
  description = "The private model container: the catalogue's bucket for this region."
  value       = azurerm_storage_container.models.name
}

output "container_id" {
  description = "Resource Manager id of the model container, the scope of its role assignments."
  value       = azurerm_storage_container.models.id
}

output "cluster_name" {
  description = "The AKS cluster."
  value       = azurerm_kubernetes_cluster.this.name
}

output "cluster_endpoint" {
  description = "The API server, open only to api_server_authorized_ip_ranges and Entra ID identities."
  value       = "https://${azurerm_kubernetes_cluster.this.fqdn}"
}

output "get_credentials_command" {
  description = "The az command that writes a kubeconfig entry for this cluster (then kubelogin convert-kubeconfig -l azurecli)."
  value       = "az aks get-credentials --resource-group ${azurerm_resource_group.this.name} --name ${azurerm_kubernetes_cluster.this.name}"
}

output "oidc_issuer_url" {
  description = "The cluster's service account token issuer, trusted by the federated credential."
  value       = azurerm_kubernetes_cluster.this.oidc_issuer_url
}

output "serving_identity_client_id" {
  description = "Client id of the model-serving managed identity: the azure.workload.identity/client-id annotation of the overlay's KSA."
  value       = azurerm_user_assigned_identity.serving.client_id
}

output "serving_identity_principal_id" {
  description = "Entra ID object id of the model-serving managed identity."
  value       = azurerm_user_assigned_identity.serving.principal_id
}

output "serving_kubernetes_service_account" {
  description = "The Kubernetes service account federated to the serving identity, as NAMESPACE/NAME."
  value       = "${var.serving_namespace}/${var.serving_service_account}"
}

output "kubelet_identity_object_id" {
  description = "Object id of the nodes' kubelet identity (grant it AcrPull on the registry the region's images come from)."
  value       = azurerm_kubernetes_cluster.this.kubelet_identity[0].object_id
}

output "log_analytics_workspace_id" {
  description = "The workspace holding container insights and the model container's access logs."
  value       = azurerm_log_analytics_workspace.this.id
}

output "vnet_id" {
  description = "The region's virtual network."
  value       = azurerm_virtual_network.this.id
}

output "node_subnet_id" {
  description = "The nodes' subnet."
  value       = azurerm_subnet.nodes.id
}
