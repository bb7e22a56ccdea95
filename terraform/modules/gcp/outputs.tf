output "region" {
  description = "The GCP region (the catalogue's cloud_region)."
  value       = var.region
}

output "project_id" {
  description = "The project: the only field the region's google_cloud_platform storage connection needs with Workload Identity."
  value       = var.project_id
}

output "bucket_name" {
  description = "The model bucket: the catalogue's bucket for this region."
  value       = google_storage_bucket.models.name
}

output "bucket_url" {
  description = "The model bucket as a gs:// URL."
  value       = google_storage_bucket.models.url
}

output "access_log_bucket_name" {
  description = "The bucket holding the model bucket's usage logs."
  value       = google_storage_bucket.access_logs.name
}

output "artifact_registry_url" {
  description = "Docker registry prefix of the region's images (the overlay's images.newName is <this>/platform)."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "cluster_name" {
  description = "The GKE cluster."
  value       = google_container_cluster.this.name
}

output "cluster_location" {
  description = "The cluster's location (its region: a regional cluster)."
  value       = google_container_cluster.this.location
}

output "cluster_endpoint" {
  description = "The control plane's public endpoint, open only to control_plane_authorized_networks."
  value       = "https://${google_container_cluster.this.endpoint}"
}

output "cluster_private_endpoint" {
  description = "The control plane's private endpoint, reachable from the VPC."
  value       = "https://${google_container_cluster.this.private_cluster_config[0].private_endpoint}"
}

output "cluster_ca_certificate" {
  description = "Base64 PEM of the cluster CA, for the region's kubernetes connection."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
  sensitive   = true
}

output "get_credentials_command" {
  description = "The gcloud command that writes a kubeconfig entry for this cluster."
  value       = "gcloud container clusters get-credentials ${google_container_cluster.this.name} --region ${var.region} --project ${var.project_id}"
}

output "workload_identity_pool" {
  description = "The project's Workload Identity pool (PROJECT.svc.id.goog)."
  value       = local.workload_pool
}

output "serving_service_account_email" {
  description = "Google service account of the model-serving pods: the iam.gke.io/gcp-service-account annotation of the overlay's KSA."
  value       = google_service_account.serving.email
}

output "serving_kubernetes_service_account" {
  description = "The Kubernetes service account bound to serving_service_account_email, as NAMESPACE/NAME."
  value       = "${var.serving_namespace}/${var.serving_service_account}"
}

output "node_service_account_email" {
  description = "Service account the nodes run as."
  value       = google_service_account.nodes.email
}

output "network_name" {
  description = "The VPC."
  value       = google_compute_network.vpc.name
}

output "subnet_name" {
  description = "The cluster's subnet."
  value       = google_compute_subnetwork.nodes.name
}
