# The region's model bucket: the catalogue's `bucket`. Private by construction (uniform bucket-level access,
# public access prevention enforced); versioned, so an overwritten or deleted model can be recovered.
resource "google_storage_bucket" "models" {
  project       = var.project_id
  name          = local.bucket_name
  location      = upper(var.region)
  storage_class = "STANDARD"
  force_destroy = false

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = 604800 # 7 days
  }

  lifecycle_rule {
    condition {
      with_state                 = "ARCHIVED"
      days_since_noncurrent_time = var.noncurrent_version_retention_days
    }
    action {
      type = "Delete"
    }
  }

  logging {
    log_bucket        = google_storage_bucket.access_logs.name
    log_object_prefix = local.bucket_name
  }

  labels = local.labels
}

# Usage logs of the model bucket: who read or wrote which model, kept access_log_retention_days.
resource "google_storage_bucket" "access_logs" {
  # checkov:skip=CKV_GCP_62:This bucket is the access-log sink; logging its own writes would log the logging.
  # checkov:skip=CKV_GCP_78:Log objects are written once and expire by age; versions would only keep expired logs.
  project       = var.project_id
  name          = "${local.bucket_name}-logs"
  location      = upper(var.region)
  storage_class = "STANDARD"
  force_destroy = false

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  lifecycle_rule {
    condition {
      age = var.access_log_retention_days
    }
    action {
      type = "Delete"
    }
  }

  labels = local.labels
}

# Cloud Storage writes usage logs as this Google group; with uniform access it needs an IAM grant.
resource "google_storage_bucket_iam_member" "access_log_writer" {
  bucket = google_storage_bucket.access_logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}
