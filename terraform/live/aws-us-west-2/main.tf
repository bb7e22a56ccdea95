locals {
  region = "us-west-2" # this root is one catalogue region; another AWS region is a copy of this folder
}

module "aws" {
  source = "../../modules/aws"

  region      = local.region
  name_prefix = var.name_prefix
  bucket_name = var.bucket_name
  vpc_cidr    = var.vpc_cidr

  endpoint_public_access       = var.endpoint_public_access
  public_access_cidrs          = var.public_access_cidrs
  cluster_admin_principal_arns = var.cluster_admin_principal_arns

  hosted_zone_id       = var.hosted_zone_id
  traffic_record_names = var.traffic_record_names
  peer_model_buckets   = var.peer_model_buckets
  service_accounts     = var.service_accounts

  tags = var.tags
}
