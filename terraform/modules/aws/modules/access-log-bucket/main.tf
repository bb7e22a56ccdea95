# A bucket that receives the S3 server access logs of one other bucket: private, versioned, TLS only, and
# written only by the S3 logging service on behalf of that bucket. Used by the aws module for the model
# bucket and by terraform/live/bootstrap for the state bucket.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  arn           = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket_name}"
  logged_arn    = "arn:${data.aws_partition.current.partition}:s3:::${var.logged_bucket_name}"
  target_prefix = "s3/${var.logged_bucket_name}/"
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:This is an access-log bucket; logging access to it would log its own log deliveries, without end.
  #checkov:skip=CKV_AWS_145:S3 server access logs can only be delivered to a bucket encrypted with SSE-S3, not SSE-KMS; it is encrypted with SSE-S3.
  #checkov:skip=CKV_AWS_144:Access logs are kept in the region they describe; a copy elsewhere adds no recovery value.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new log objects; they are read during investigations.
  bucket = var.bucket_name
  tags   = merge(var.tags, { Name = var.bucket_name })
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    object_ownership = "BucketOwnerEnforced" # ACLs off: the logging service writes through the bucket policy
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "S3ServerAccessLogsOfTheLoggedBucket"
        Effect    = "Allow"
        Principal = { Service = "logging.s3.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${local.arn}/${local.target_prefix}*"
        Condition = {
          ArnLike      = { "aws:SourceArn" = local.logged_arn }
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        }
      },
      {
        Sid       = "DenyPlainHttp"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [local.arn, "${local.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "DenyTlsOlderThan12"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [local.arn, "${local.arn}/*"]
        Condition = { NumericLessThan = { "s3:TlsVersion" = "1.2" } }
      },
    ]
  })

  depends_on = [aws_s3_bucket_public_access_block.this]
}
