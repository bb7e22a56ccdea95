# The platform's IAM roles, each assumable only by named Kubernetes service accounts of this cluster (IRSA),
# each allowed only what its job needs:
#
# - model-serving: read this region's model bucket (the role k8s/overlays/aws-us-west-2 annotates);
# - replicator:    read and write the model buckets (this region's and peer_model_buckets), nothing else;
# - failover:      change the traffic records of one hosted zone (only if hosted_zone_id is given);
# - cost:          read Cost Explorer.

locals {
  oidc_issuer = trimprefix(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://")

  model_bucket_arns = concat(
    [local.bucket_arn],
    [for bucket in var.peer_model_buckets : "arn:${local.partition}:s3:::${bucket.name}"],
  )
  model_key_arns = concat([aws_kms_key.models.arn], [for bucket in var.peer_model_buckets : bucket.kms_key_arn])

  # The model keys may only be used by S3 on the caller's behalf, never to encrypt or decrypt data directly.
  through_s3_only = { StringLike = { "kms:ViaService" = "s3.*.amazonaws.com" } }

  platform_role_policies = merge(
    {
      model-serving = [
        {
          Sid      = "ListThisRegionsModels"
          Effect   = "Allow"
          Action   = "s3:ListBucket"
          Resource = local.bucket_arn
        },
        {
          Sid      = "ReadThisRegionsModels"
          Effect   = "Allow"
          Action   = "s3:GetObject"
          Resource = "${local.bucket_arn}/*"
        },
        {
          Sid       = "DecryptThroughS3"
          Effect    = "Allow"
          Action    = "kms:Decrypt"
          Resource  = aws_kms_key.models.arn
          Condition = local.through_s3_only
        },
      ]
      replicator = [
        {
          Sid      = "ListModelBuckets"
          Effect   = "Allow"
          Action   = "s3:ListBucket"
          Resource = local.model_bucket_arns
        },
        {
          # Multipart uploads are PutObject (create, upload part, complete) and AbortMultipartUpload;
          # server-side copies are GetObject on the source and PutObject on the target.
          Sid      = "ReadAndWriteModelObjects"
          Effect   = "Allow"
          Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
          Resource = [for arn in local.model_bucket_arns : "${arn}/*"]
        },
        {
          Sid       = "EncryptAndDecryptThroughS3"
          Effect    = "Allow"
          Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
          Resource  = local.model_key_arns
          Condition = local.through_s3_only
        },
      ]
      cost = [
        {
          # Cost Explorer has no resource-level permissions: AWS requires "*" for GetCostAndUsage.
          Sid      = "ReadCostAndUsage"
          Effect   = "Allow"
          Action   = "ce:GetCostAndUsage"
          Resource = "*"
        },
      ]
    },
    { for role, statements in {
      failover = [
        {
          # Only CNAMEs, only under the traffic record names, only in this zone: the failover DAGs move
          # weights and re-point latency and failover records, and can touch nothing else.
          Sid      = "ChangeTrafficRecords"
          Effect   = "Allow"
          Action   = "route53:ChangeResourceRecordSets"
          Resource = local.hosted_zone_arn
          Condition = {
            "ForAllValues:StringEquals" = {
              "route53:ChangeResourceRecordSetsNormalizedRecordNames" = var.traffic_record_names
              "route53:ChangeResourceRecordSetsRecordTypes"           = ["CNAME"]
            }
          }
        },
        {
          Sid      = "ReadZoneRecords"
          Effect   = "Allow"
          Action   = "route53:ListResourceRecordSets"
          Resource = local.hosted_zone_arn
        },
        {
          # Finding the zone by name and listing health checks support no resource-level permissions:
          # AWS requires "*" for both, and both only read.
          Sid      = "FindZoneAndHealthChecks"
          Effect   = "Allow"
          Action   = ["route53:ListHostedZonesByName", "route53:ListHealthChecks"]
          Resource = "*"
        },
      ]
    } : role => statements if var.hosted_zone_id != null },
  )

  # Role name -> the service accounts ("NAMESPACE/NAME") that may assume it.
  platform_role_service_accounts = {
    for role in keys(local.platform_role_policies) : role => var.service_accounts[replace(role, "-", "_")]
  }
}

resource "aws_iam_role" "platform" {
  for_each = local.platform_role_service_accounts

  name        = "${var.name_prefix}-${each.key}-${var.region}"
  description = "IRSA role of ${join(", ", each.value)} on ${local.cluster_name}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.cluster.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.oidc_issuer}:sub" = [for account in each.value : "system:serviceaccount:${replace(account, "/", ":")}"]
          "${local.oidc_issuer}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "platform" {
  for_each = local.platform_role_policies

  name = each.key
  role = aws_iam_role.platform[each.key].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = each.value
  })
}
