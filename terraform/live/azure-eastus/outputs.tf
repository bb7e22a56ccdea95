output "catalogue_region" {
  description = "This region's entry of the region catalogue, as far as Terraform knows it (read by python -m include.terraform_catalogue)."
  value = {
    name         = "azure-${local.location}"
    provider     = "azure"
    cloud_region = module.azure.location
    bucket       = module.azure.container_name
    connections = {
      storage    = var.storage_connection_id
      kubernetes = var.kubernetes_connection_id
    }
  }
}

output "cluster_name" {
  description = "The AKS cluster."
  value       = module.azure.cluster_name
}

output "get_credentials_command" {
  description = "Writes a kubeconfig entry for the cluster."
  value       = module.azure.get_credentials_command
}

output "storage_account_url" {
  description = "Blob endpoint of the storage account: the host of the region's wasb connection."
  value       = module.azure.storage_account_url
}

output "container_name" {
  description = "The model container."
  value       = module.azure.container_name
}

output "serving_identity_client_id" {
  description = "Client id of the model-serving identity (the overlay's azure.workload.identity/client-id)."
  value       = module.azure.serving_identity_client_id
}
