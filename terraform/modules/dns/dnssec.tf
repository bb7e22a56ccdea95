# DNSSEC signing of the zone with a key-signing key held in KMS (us-east-1, as Route 53 requires).

# No automatic rotation: KMS cannot rotate asymmetric keys. Roll the key-signing key instead (a new
# aws_route53_key_signing_key, then the parent's DS record), as Route 53's DNSSEC guide describes.
resource "aws_kms_key" "dnssec" {
  count = var.dnssec_signing ? 1 : 0

  description              = "DNSSEC key-signing key of ${var.zone_name}"
  customer_master_key_spec = "ECC_NIST_P256"
  key_usage                = "SIGN_VERIFY"
  deletion_window_in_days  = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # AWS's default key policy: in a key policy "Resource": "*" is this key, and kms:* lets IAM policies
        # administer it, so the key never becomes unmanageable.
        Sid       = "AccountAdministersThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "Route53DnssecSignsThisAccountsZones"
        Effect    = "Allow"
        Principal = { Service = "dnssec-route53.amazonaws.com" }
        Action    = ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:route53:::hostedzone/*" }
        }
      },
      {
        Sid       = "Route53DnssecGrantsForItself"
        Effect    = "Allow"
        Principal = { Service = "dnssec-route53.amazonaws.com" }
        Action    = "kms:CreateGrant"
        Resource  = "*"
        Condition = { Bool = { "kms:GrantIsForAWSResource" = "true" } }
      },
    ]
  })
  tags = local.tags

  lifecycle {
    precondition {
      condition     = data.aws_region.current.name == "us-east-1"
      error_message = "Route 53 DNSSEC keys must be in us-east-1; configure this module's aws provider for us-east-1."
    }
  }
}

resource "aws_route53_key_signing_key" "this" {
  count = var.dnssec_signing ? 1 : 0

  hosted_zone_id             = aws_route53_zone.this.id
  key_management_service_arn = aws_kms_key.dnssec[0].arn
  name                       = "mlp_ksk"
}

resource "aws_route53_hosted_zone_dnssec" "this" {
  count = var.dnssec_signing ? 1 : 0

  hosted_zone_id = aws_route53_key_signing_key.this[0].hosted_zone_id
  signing_status = "SIGNING"
}
