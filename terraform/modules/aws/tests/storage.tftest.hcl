# The model bucket: versioned, KMS-encrypted, public access blocked, TLS only, access-logged.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

variables {
  region                       = "us-west-2"
  name_prefix                  = "mlp"
  cluster_admin_principal_arns = ["arn:aws:iam::123456789012:role/platform-admin"]
}

run "versioned_encrypted_private_bucket" {
  command = plan

  assert {
    condition     = aws_s3_bucket.models.bucket == "mlp-models-us-west-2"
    error_message = "The default bucket name is <prefix>-models-<region>."
  }

  assert {
    condition     = aws_s3_bucket_versioning.models.versioning_configuration[0].status == "Enabled"
    error_message = "Model bucket versioning must be Enabled."
  }

  assert {
    condition = anytrue([for rule in aws_s3_bucket_server_side_encryption_configuration.models.rule :
      one(rule.apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
      && one(rule.apply_server_side_encryption_by_default).kms_master_key_id == aws_kms_key.models.arn
    ])
    error_message = "Model objects must be encrypted with the models KMS key by default."
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.models.block_public_acls
      && aws_s3_bucket_public_access_block.models.block_public_policy
      && aws_s3_bucket_public_access_block.models.ignore_public_acls
      && aws_s3_bucket_public_access_block.models.restrict_public_buckets
    )
    error_message = "All four public-access-block flags must be on."
  }

  assert {
    condition     = aws_s3_bucket_ownership_controls.models.rule[0].object_ownership == "BucketOwnerEnforced"
    error_message = "ACLs must be disabled."
  }

  assert {
    condition     = aws_s3_bucket_logging.models.target_bucket == module.access_logs.bucket && aws_s3_bucket_logging.models.target_prefix == "s3/mlp-models-us-west-2/"
    error_message = "Server access logs must go to the access-log bucket, under the prefix its policy allows."
  }
}

run "bucket_policy_denies_plain_http_and_old_tls" {
  command = plan

  assert {
    condition = anytrue([for statement in jsondecode(aws_s3_bucket_policy.models.policy).Statement :
      statement.Effect == "Deny" && statement.Principal == "*" && statement.Action == "s3:*"
      && try(statement.Condition.Bool["aws:SecureTransport"], null) == "false"
      && toset(statement.Resource) == toset(["arn:aws:s3:::mlp-models-us-west-2", "arn:aws:s3:::mlp-models-us-west-2/*"])
    ])
    error_message = "The bucket policy must deny every request not made over TLS, on the bucket and its objects."
  }

  assert {
    condition = anytrue([for statement in jsondecode(aws_s3_bucket_policy.models.policy).Statement :
      statement.Effect == "Deny" && try(statement.Condition.NumericLessThan["s3:TlsVersion"], null) == "1.2"
    ])
    error_message = "The bucket policy must deny TLS older than 1.2."
  }

  assert {
    condition     = alltrue([for statement in jsondecode(aws_s3_bucket_policy.models.policy).Statement : statement.Effect == "Deny"])
    error_message = "The model bucket policy only denies; access is granted by the IAM roles."
  }
}

# The access-log bucket's own settings are asserted by modules/access-log-bucket/tests.
run "access_log_bucket_is_named_after_the_model_bucket" {
  command = plan

  assert {
    condition     = output.access_log_bucket_name == "mlp-models-us-west-2-logs"
    error_message = "The access-log bucket is <model bucket>-logs."
  }
}

run "bucket_name_can_be_chosen" {
  command = plan

  variables {
    bucket_name = "example-ml-models-us-west-2"
  }

  assert {
    condition     = aws_s3_bucket.models.bucket == "example-ml-models-us-west-2" && output.bucket_name == "example-ml-models-us-west-2"
    error_message = "bucket_name must name the model bucket."
  }
}
