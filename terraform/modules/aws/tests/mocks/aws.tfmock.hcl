# Values the mocked aws provider returns, shaped like AWS's, so the provider's own argument checks pass and
# the assertions can compare real-looking ARNs. Loaded by `mock_provider "aws" { source = "./tests/mocks" }`.

mock_data "aws_partition" {
  defaults = {
    partition  = "aws"
    dns_suffix = "amazonaws.com"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
    arn        = "arn:aws:iam::123456789012:role/terraform"
  }
}

mock_data "aws_region" {
  defaults = {
    name = "us-west-2"
  }
}

mock_data "aws_availability_zones" {
  defaults = {
    names = ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"]
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/mocked"
  }
}

mock_resource "aws_kms_key" {
  defaults = {
    arn    = "arn:aws:kms:us-west-2:123456789012:key/00000000-0000-0000-0000-000000000000"
    key_id = "00000000-0000-0000-0000-000000000000"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:us-west-2:123456789012:log-group:mocked"
  }
}

mock_resource "aws_eks_cluster" {
  defaults = {
    arn                   = "arn:aws:eks:us-west-2:123456789012:cluster/mlp-us-west-2"
    endpoint              = "https://0123456789ABCDEF.gr7.us-west-2.eks.amazonaws.com"
    identity              = [{ oidc = [{ issuer = "https://oidc.eks.us-west-2.amazonaws.com/id/0123456789ABCDEF" }] }]
    certificate_authority = [{ data = "bW9jaw==" }]
  }
}

mock_resource "aws_iam_openid_connect_provider" {
  defaults = {
    arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/0123456789ABCDEF"
  }
}

mock_resource "aws_launch_template" {
  defaults = {
    id             = "lt-0123456789abcdef0"
    latest_version = 1
  }
}

# Resources whose generated ids the assertions compare: listed so the ids are known during plan.
mock_resource "aws_subnet" {}
mock_resource "aws_eip" {}
mock_resource "aws_nat_gateway" {}
mock_resource "aws_route_table" {}
mock_resource "aws_internet_gateway" {}
mock_resource "aws_s3_bucket" {}
