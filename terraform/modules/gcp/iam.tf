# The nodes' own service account instead of the Compute Engine default (Editor on the project): only what
# a node needs to write logs and metrics, plus pulling this region's images.
resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-gke-nodes"
  display_name = "GKE nodes of ${local.name}"
}

resource "google_project_iam_member" "nodes" {
  project = var.project_id
  role    = "roles/container.defaultNodeServiceAccount"
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_artifact_registry_repository_iam_member" "nodes_pull_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.nodes.email}"
}

# The identity the model-serving pods act as: k8s/overlays/<gcp region>/cloud.yaml annotates the KSA with
# this account's email (iam.gke.io/gcp-service-account). Serving only reads the model bucket.
resource "google_service_account" "serving" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-model-serving"
  display_name = "model-serving pods of ${local.name} (Workload Identity)"
}

resource "google_service_account_iam_member" "serving_workload_identity" {
  service_account_id = google_service_account.serving.name
  role               = "roles/iam.workloadIdentityUser"
  member             = local.serving_workload_member

  # The workload identity pool exists once the first cluster with Workload Identity does.
  depends_on = [google_container_cluster.this]
}

resource "google_storage_bucket_iam_member" "serving_reads_models" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.serving.email}"
}

# The replication DAG writes parts, composes and deletes them, and deletes a copy whose checksum does not
# match, so it needs object admin on this bucket (and on no other).
resource "google_storage_bucket_iam_member" "replicators" {
  for_each = toset(var.replicator_members)

  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectAdmin"
  member = each.value
}
