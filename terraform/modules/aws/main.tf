# One serving region of the platform on AWS: a three-zone VPC, an EKS cluster with an on-demand and a Spot
# managed node group, the region's model bucket, and the IAM roles the platform's workloads assume through
# IRSA. Call it once per AWS region, with a provider configured for that region.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

# Only zones that need no opt-in: Local Zones and Wavelength Zones lack NAT gateways and EKS node support.
data "aws_availability_zones" "available" {
  count = var.availability_zones == null ? 1 : 0
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  name         = "${var.name_prefix}-${var.region}"
  cluster_name = local.name
  bucket_name  = coalesce(var.bucket_name, "${var.name_prefix}-models-${var.region}")

  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  # ARNs built from names rather than read from resources, so plans (and the tests) know them in advance.
  bucket_arn      = "arn:${local.partition}:s3:::${local.bucket_name}"
  hosted_zone_arn = var.hosted_zone_id == null ? null : "arn:${local.partition}:route53:::hostedzone/${var.hosted_zone_id}"

  availability_zones = var.availability_zones != null ? var.availability_zones : slice(data.aws_availability_zones.available[0].names, 0, 3)
  # Zone name -> its index: subnet numbers and resource keys both follow the zone.
  zone_index = { for index, zone in local.availability_zones : zone => index }

  tags = merge(var.tags, {
    platform   = "mlp"
    managed-by = "terraform"
    region     = var.region
  })
}
