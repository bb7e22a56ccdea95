# Settings the catalogue (include/catalogue.py) or Route 53 would refuse are refused here first.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

variables {
  zone_name            = "models.example.com"
  weighted_record_name = "api.models.example.com"
  latency_record_name  = "latency.api.models.example.com"
  failover_record_name = "failover.api.models.example.com"
  regions = [
    {
      name             = "aws-us-west-2"
      provider         = "aws"
      cloud_region     = "us-west-2"
      primary          = true
      serving_endpoint = "https://us-west-2.api.models.example.com"
      dns_record       = "us-west-2.api.models.example.com"
    },
    {
      name             = "gcp-europe-west1"
      provider         = "gcp"
      cloud_region     = "europe-west1"
      serving_endpoint = "https://europe-west1.api.models.example.com"
      dns_record       = "europe-west1.api.models.example.com"
      latency_region   = "eu-west-1"
    },
  ]
}

run "interval_is_10_or_30" {
  command = plan
  variables {
    health_check_interval = 20
  }
  expect_failures = [var.health_check_interval]
}

run "failure_threshold_is_1_to_10" {
  command = plan
  variables {
    health_check_failure_threshold = 11
  }
  expect_failures = [var.health_check_failure_threshold]
}

run "records_must_be_inside_the_zone" {
  command = plan
  variables {
    latency_record_name = "latency.models.example.org"
  }
  expect_failures = [var.latency_record_name]
}

run "record_names_must_differ" {
  command = plan
  variables {
    failover_record_name = "api.models.example.com"
  }
  expect_failures = [var.failover_record_name]
}

run "exactly_one_primary" {
  command = plan
  variables {
    regions = [
      { name = "aws-us-west-2", provider = "aws", cloud_region = "us-west-2", primary = true, serving_endpoint = "https://a.models.example.com", dns_record = "a.models.example.com" },
      { name = "aws-us-east-1", provider = "aws", cloud_region = "us-east-1", primary = true, serving_endpoint = "https://b.models.example.com", dns_record = "b.models.example.com" },
    ]
  }
  expect_failures = [var.regions]
}

run "regions_off_aws_need_a_latency_region" {
  command = plan
  variables {
    regions = [
      { name = "aws-us-west-2", provider = "aws", cloud_region = "us-west-2", primary = true, serving_endpoint = "https://a.models.example.com", dns_record = "a.models.example.com" },
      { name = "gcp-europe-west1", provider = "gcp", cloud_region = "europe-west1", serving_endpoint = "https://b.models.example.com", dns_record = "b.models.example.com" },
    ]
  }
  expect_failures = [var.regions]
}

run "dnssec_and_query_logs_need_us_east_1" {
  command = plan

  override_data {
    target = data.aws_region.current
    values = { name = "eu-west-1" }
  }

  expect_failures = [aws_kms_key.dnssec, aws_cloudwatch_log_group.query_logs]
}
