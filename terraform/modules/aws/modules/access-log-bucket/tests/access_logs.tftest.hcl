# The access-log bucket: private, versioned, SSE-S3 (what log delivery requires), TLS only, and writable
# only by S3 log delivery for the one logged bucket.

mock_provider "aws" {
  override_during = plan

  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }

  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
}

variables {
  bucket_name        = "mlp-models-us-west-2-logs"
  logged_bucket_name = "mlp-models-us-west-2"
}

run "private_versioned_sse_s3_bucket" {
  command = plan

  assert {
    condition = (
      aws_s3_bucket_versioning.this.versioning_configuration[0].status == "Enabled"
      && aws_s3_bucket_public_access_block.this.block_public_acls
      && aws_s3_bucket_public_access_block.this.block_public_policy
      && aws_s3_bucket_public_access_block.this.ignore_public_acls
      && aws_s3_bucket_public_access_block.this.restrict_public_buckets
      && aws_s3_bucket_ownership_controls.this.rule[0].object_ownership == "BucketOwnerEnforced"
    )
    error_message = "The access-log bucket must be versioned, with public access blocked and ACLs off."
  }

  assert {
    # S3 server access logging can only write to SSE-S3 buckets.
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "The access-log bucket must be encrypted with SSE-S3."
  }

  assert {
    condition     = one([for rule in aws_s3_bucket_lifecycle_configuration.this.rule : one(rule.expiration).days]) == 365
    error_message = "Logs expire after the retention period."
  }
}

run "only_the_logged_buckets_deliveries_may_write" {
  command = plan

  assert {
    condition = [for statement in jsondecode(aws_s3_bucket_policy.this.policy).Statement : {
      resource = statement.Resource, source = statement.Condition.ArnLike["aws:SourceArn"], account = statement.Condition.StringEquals["aws:SourceAccount"]
      } if statement.Effect == "Allow"] == [{
      resource = "arn:aws:s3:::mlp-models-us-west-2-logs/s3/mlp-models-us-west-2/*", source = "arn:aws:s3:::mlp-models-us-west-2", account = "123456789012"
    }]
    error_message = "The one Allow is log delivery for the logged bucket, into its prefix."
  }

  assert {
    condition = anytrue([for statement in jsondecode(aws_s3_bucket_policy.this.policy).Statement :
      statement.Effect == "Deny" && try(statement.Condition.Bool["aws:SecureTransport"], null) == "false"
    ])
    error_message = "Requests without TLS must be denied."
  }

  assert {
    condition     = output.target_prefix == "s3/mlp-models-us-west-2/"
    error_message = "Logs are delivered under s3/<logged bucket>/."
  }
}
