# Customer-managed keys, one per purpose so each key policy names only the services that use it: the model
# bucket's objects, the cluster's Kubernetes secrets, and the CloudWatch log groups. All rotate yearly.

locals {
  # The account may manage and use the key through IAM policies; without it a key whose other statements
  # name only services could never be administered again. AWS's default key policy is this statement: in a key
  # policy "Resource": "*" means this key, and kms:* is needed so IAM policies can grant any key action.
  key_policy_account_statement = {
    Sid       = "AccountAdministersThroughIam"
    Effect    = "Allow"
    Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
    Action    = "kms:*"
    Resource  = "*"
  }
}

resource "aws_kms_key" "models" {
  description         = "${local.name}: model bucket objects"
  enable_key_rotation = true
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [local.key_policy_account_statement]
  })
  tags = local.tags
}

resource "aws_kms_alias" "models" {
  name          = "alias/${local.name}-models"
  target_key_id = aws_kms_key.models.key_id
}

resource "aws_kms_key" "cluster" {
  description         = "${local.name}: EKS envelope encryption of Kubernetes secrets"
  enable_key_rotation = true
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [local.key_policy_account_statement]
  })
  tags = local.tags
}

resource "aws_kms_alias" "cluster" {
  name          = "alias/${local.name}-eks-secrets"
  target_key_id = aws_kms_key.cluster.key_id
}

resource "aws_kms_key" "logs" {
  description         = "${local.name}: EKS control-plane and VPC flow log groups"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      local.key_policy_account_statement,
      {
        Sid       = "CloudWatchLogsEncryptsThisRegionsGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]
        Resource  = "*" # in a key policy: this key
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*" }
        }
      },
    ]
  })
  tags = local.tags
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${local.name}-logs"
  target_key_id = aws_kms_key.logs.key_id
}
