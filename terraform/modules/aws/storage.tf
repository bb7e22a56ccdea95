# The region's model bucket: versioned, encrypted with the region's models key, closed to the public and to
# plain HTTP, with server access logs in a bucket of their own.

locals {
  access_log_bucket_name = "${local.bucket_name}-logs"
}

resource "aws_s3_bucket" "models" {
  #checkov:skip=CKV_AWS_144:Models reach other regions through the platform's own replication (include/replication), which also covers GCS and Azure and audits every copy; S3 cross-region replication would be a second, unaudited path.
  #checkov:skip=CKV2_AWS_62:New model versions are announced by registry events on SQS (catalogue events.queue_url); nothing consumes bucket notifications.
  bucket = local.bucket_name
  tags   = merge(local.tags, { Name = local.bucket_name })
}

resource "aws_s3_bucket_ownership_controls" "models" {
  bucket = aws_s3_bucket.models.id
  rule {
    object_ownership = "BucketOwnerEnforced" # ACLs off: access is the bucket policy and IAM only
  }
}

resource "aws_s3_bucket_public_access_block" "models" {
  bucket                  = aws_s3_bucket.models.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "models" {
  bucket = aws_s3_bucket.models.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "models" {
  bucket = aws_s3_bucket.models.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.models.arn
    }
    bucket_key_enabled = true # one KMS call per object instead of per part: cheaper multipart replication
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "models" {
  bucket = aws_s3_bucket.models.id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  # A replication that died mid-upload leaves parts that are billed but invisible.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.models]
}

resource "aws_s3_bucket_logging" "models" {
  bucket        = aws_s3_bucket.models.id
  target_bucket = module.access_logs.bucket
  target_prefix = module.access_logs.target_prefix
}

# Refuse any request not made over TLS 1.2 or newer, whoever makes it; access itself is granted by IAM.
resource "aws_s3_bucket_policy" "models" {
  bucket = aws_s3_bucket.models.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyPlainHttp"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [local.bucket_arn, "${local.bucket_arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "DenyTlsOlderThan12"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [local.bucket_arn, "${local.bucket_arn}/*"]
        Condition = { NumericLessThan = { "s3:TlsVersion" = "1.2" } }
      },
    ]
  })

  depends_on = [aws_s3_bucket_public_access_block.models]
}

# Server access logs of the model bucket.
module "access_logs" {
  source = "./modules/access-log-bucket"

  bucket_name        = local.access_log_bucket_name
  logged_bucket_name = local.bucket_name
  retention_days     = var.access_log_retention_days
  tags               = local.tags
}
