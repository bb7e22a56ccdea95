# The region's own image registry (k8s/overlays/<gcp region> pulls <region>-docker.pkg.dev/<project>/<id>).
# Tags are immutable, so a tag names one digest for good; the cleanup policy therefore deletes only untagged
# versions (superseded pushes), never a tag a Deployment may still run, and always keeps the newest ones.
resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84:Encrypted at rest with Google-managed keys; a customer-managed key needs a Cloud KMS key ring (never deletable) and service-agent grants outside this module.
  project       = var.project_id
  location      = var.region
  repository_id = var.artifact_repository_id
  format        = "DOCKER"
  description   = "Container images of the ML platform for ${local.name}"

  docker_config {
    immutable_tags = true
  }

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "1209600s" # 14 days
    }
  }

  cleanup_policies {
    id     = "keep-newest"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.image_versions_kept
    }
  }

  labels = local.labels
}
