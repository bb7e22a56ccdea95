# One serving region of the platform on GCP: a VPC-native private GKE cluster with Workload Identity, the
# region's model bucket and the Artifact Registry repository its images come from. Call it once per region.

locals {
  name        = "${var.name_prefix}-${var.region}"
  bucket_name = coalesce(var.bucket_name, "${var.name_prefix}-models-${var.region}")

  # The serving pods' Kubernetes identity as Workload Identity names it: PROJECT.svc.id.goog[NAMESPACE/KSA].
  workload_pool           = "${var.project_id}.svc.id.goog"
  serving_workload_member = "serviceAccount:${local.workload_pool}[${var.serving_namespace}/${var.serving_service_account}]"

  pods_range_name     = "pods"
  services_range_name = "services"

  labels = merge(var.labels, {
    platform   = "mlp"
    managed-by = "terraform"
  })
}
