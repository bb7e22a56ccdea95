# Inputs that would build something unsafe or inconsistent are refused before anything is planned.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

variables {
  region                       = "us-west-2"
  name_prefix                  = "mlp"
  cluster_admin_principal_arns = ["arn:aws:iam::123456789012:role/platform-admin"]
}

run "vpc_must_be_a_16" {
  command = plan
  variables {
    vpc_cidr = "10.0.0.0/20"
  }
  expect_failures = [var.vpc_cidr]
}

run "public_endpoint_needs_named_networks" {
  command = plan
  variables {
    endpoint_public_access = true
  }
  expect_failures = [var.public_access_cidrs]
}

run "public_endpoint_never_open_to_the_internet" {
  command = plan
  variables {
    endpoint_public_access = true
    public_access_cidrs    = ["0.0.0.0/0"]
  }
  expect_failures = [var.public_access_cidrs]
}

run "failover_role_needs_the_record_names" {
  command = plan
  variables {
    hosted_zone_id = "Z0123456789ABCDEFGHIJ"
  }
  expect_failures = [var.traffic_record_names]
}

run "three_distinct_zones" {
  command = plan
  variables {
    availability_zones = ["us-west-2a", "us-west-2a", "us-west-2b"]
  }
  expect_failures = [var.availability_zones]
}

run "provider_region_must_match" {
  command = plan
  variables {
    region = "eu-west-1" # the mocked provider is in us-west-2
  }
  expect_failures = [aws_vpc.this]
}

run "every_role_trusts_some_service_account" {
  command = plan
  variables {
    service_accounts = { cost = [] }
  }
  expect_failures = [var.service_accounts]
}

run "service_accounts_are_namespace_slash_name" {
  command = plan
  variables {
    service_accounts = { replicator = ["airflow-worker"] }
  }
  expect_failures = [var.service_accounts]
}

run "cluster_admins_are_named" {
  command = plan
  variables {
    cluster_admin_principal_arns = []
  }
  expect_failures = [var.cluster_admin_principal_arns]
}
