# Values the mocked aws provider returns, shaped like AWS's. Loaded by
# `mock_provider "aws" { source = "./tests/mocks" }`.

mock_data "aws_partition" {
  defaults = {
    partition = "aws"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
  }
}

mock_data "aws_region" {
  defaults = {
    name = "us-east-1"
  }
}

mock_resource "aws_route53_zone" {
  defaults = {
    zone_id      = "Z0123456789ABCDEFGHIJ"
    arn          = "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"
    name_servers = ["ns-1.awsdns-01.org", "ns-2.awsdns-02.co.uk", "ns-3.awsdns-03.com", "ns-4.awsdns-04.net"]
  }
}

mock_resource "aws_kms_key" {
  defaults = {
    arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/route53/models.example.com"
  }
}

# Each health check gets its own generated id, known during plan, so records can be matched to their region's.
mock_resource "aws_route53_health_check" {}
