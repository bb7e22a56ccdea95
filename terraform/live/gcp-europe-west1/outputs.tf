output "catalogue_region" {
  description = "This region's entry of the region catalogue, as far as Terraform knows it (read by python -m include.terraform_catalogue)."
  value = {
    name         = "gcp-${local.region}"
    provider     = "gcp"
    cloud_region = module.gcp.region
    bucket       = module.gcp.bucket_name
    connections = {
      storage    = var.storage_connection_id
      kubernetes = var.kubernetes_connection_id
    }
  }
}

output "cluster_name" {
  description = "The GKE cluster."
  value       = module.gcp.cluster_name
}

output "get_credentials_command" {
  description = "Writes a kubeconfig entry for the cluster."
  value       = module.gcp.get_credentials_command
}

output "bucket_name" {
  description = "The model bucket."
  value       = module.gcp.bucket_name
}

output "serving_service_account_email" {
  description = "Google service account of the model-serving pods (the overlay's iam.gke.io/gcp-service-account)."
  value       = module.gcp.serving_service_account_email
}

output "artifact_registry_url" {
  description = "Docker registry prefix of the region's images."
  value       = module.gcp.artifact_registry_url
}
