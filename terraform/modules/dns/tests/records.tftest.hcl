# The zone, health checks and traffic records, as include/failover/dns.py creates and reads them: the
# three regions of config/regions.example-cloud.yaml.

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
      target           = "k8s-mlpservi-modelser-0123456789-0123456789abcdef.elb.us-west-2.amazonaws.com"
    },
    {
      name             = "gcp-europe-west1"
      provider         = "gcp"
      cloud_region     = "europe-west1"
      serving_endpoint = "https://europe-west1.api.models.example.com"
      dns_record       = "europe-west1.api.models.example.com"
      latency_region   = "eu-west-1"
    },
    {
      name             = "azure-southeastasia"
      provider         = "azure"
      cloud_region     = "southeastasia"
      serving_endpoint = "http://203.0.113.10:8080/serving/"
      dns_record       = "southeastasia.api.models.example.com"
      latency_region   = "ap-southeast-1"
    },
  ]
}

run "a_ten_second_health_check_per_region" {
  command = plan

  assert {
    condition     = toset(keys(aws_route53_health_check.region)) == toset(["aws-us-west-2", "gcp-europe-west1", "azure-southeastasia"])
    error_message = "Each region needs one health check."
  }

  assert {
    condition     = alltrue([for check in aws_route53_health_check.region : check.request_interval == 10 && check.failure_threshold == 3])
    error_message = "Health checks run every 10 seconds and fail a region after 3 failures."
  }

  assert {
    condition = (
      aws_route53_health_check.region["aws-us-west-2"].type == "HTTPS"
      && aws_route53_health_check.region["aws-us-west-2"].fqdn == "us-west-2.api.models.example.com"
      && aws_route53_health_check.region["aws-us-west-2"].ip_address == null
      && aws_route53_health_check.region["aws-us-west-2"].port == 443
      && aws_route53_health_check.region["aws-us-west-2"].resource_path == "/ready"
    )
    error_message = "An https endpoint is checked with HTTPS GET /ready on port 443 of its host name."
  }

  assert {
    # dns.py: an IP address host is probed by address, the path's trailing slash dropped before /ready.
    condition = (
      aws_route53_health_check.region["azure-southeastasia"].type == "HTTP"
      && aws_route53_health_check.region["azure-southeastasia"].ip_address == "203.0.113.10"
      && aws_route53_health_check.region["azure-southeastasia"].fqdn == null
      && aws_route53_health_check.region["azure-southeastasia"].port == 8080
      && aws_route53_health_check.region["azure-southeastasia"].resource_path == "/serving/ready"
    )
    error_message = "An http endpoint on an address is checked with HTTP GET <path>/ready on its port."
  }

  assert {
    condition     = alltrue([for name, check in aws_route53_health_check.region : check.tags["Name"] == name && check.tags["mlp-zone"] == "models.example.com"])
    error_message = "Health checks carry the Name and mlp-zone tags dns.py gives them."
  }
}

run "every_traffic_record_is_a_60_second_cname" {
  command = plan

  assert {
    condition = alltrue([
      for record in concat(values(aws_route53_record.weighted), values(aws_route53_record.latency), values(aws_route53_record.failover)) :
      record.type == "CNAME" && record.ttl == 60 && record.zone_id == "Z0123456789ABCDEFGHIJ"
    ])
    error_message = "Every traffic record is a CNAME with a 60-second TTL in the zone."
  }

  assert {
    condition     = length(aws_route53_record.weighted) == 3 && length(aws_route53_record.latency) == 3 && length(aws_route53_record.failover) == 2
    error_message = "Expected a weighted and a latency record per region, and two failover records."
  }
}

run "weighted_records_as_dns_py_writes_them" {
  command = plan

  assert {
    condition = alltrue([for name, record in aws_route53_record.weighted :
      record.name == "api.models.example.com"
      && record.set_identifier == name
      && one(record.weighted_routing_policy).weight == 100
      && record.records == toset([{ aws-us-west-2 = "us-west-2.api.models.example.com", gcp-europe-west1 = "europe-west1.api.models.example.com", azure-southeastasia = "southeastasia.api.models.example.com" }[name]])
      && record.health_check_id == aws_route53_health_check.region[name].id
    ])
    error_message = "Weighted records: set identifier = region name, weight 100, CNAME to the region's dns_record, with its health check."
  }
}

run "latency_records_as_dns_py_writes_them" {
  command = plan

  assert {
    condition = alltrue([for name, record in aws_route53_record.latency :
      record.name == "latency.api.models.example.com"
      && record.set_identifier == "${name}/latency"
      && record.health_check_id == aws_route53_health_check.region[name].id
    ])
    error_message = "Latency records: set identifier = <region>/latency, with the region's health check."
  }

  assert {
    condition = (
      one(aws_route53_record.latency["aws-us-west-2"].latency_routing_policy).region == "us-west-2"
      && one(aws_route53_record.latency["gcp-europe-west1"].latency_routing_policy).region == "eu-west-1"
      && one(aws_route53_record.latency["azure-southeastasia"].latency_routing_policy).region == "ap-southeast-1"
    )
    error_message = "An AWS region stands for itself in latency routing; others by their latency_region."
  }
}

run "failover_records_primary_then_first_other_region" {
  command = plan

  assert {
    condition = (
      aws_route53_record.failover["PRIMARY"].set_identifier == "PRIMARY"
      && one(aws_route53_record.failover["PRIMARY"].failover_routing_policy).type == "PRIMARY"
      && aws_route53_record.failover["PRIMARY"].records == toset(["us-west-2.api.models.example.com"])
      && aws_route53_record.failover["PRIMARY"].health_check_id == aws_route53_health_check.region["aws-us-west-2"].id
    )
    error_message = "PRIMARY points at the primary region, with its health check."
  }

  assert {
    condition = (
      aws_route53_record.failover["SECONDARY"].set_identifier == "SECONDARY"
      && one(aws_route53_record.failover["SECONDARY"].failover_routing_policy).type == "SECONDARY"
      && aws_route53_record.failover["SECONDARY"].records == toset(["europe-west1.api.models.example.com"])
      && aws_route53_record.failover["SECONDARY"].health_check_id == aws_route53_health_check.region["gcp-europe-west1"].id
    )
    error_message = "SECONDARY points at the first non-primary region in catalogue order."
  }

  assert {
    condition     = alltrue([for record in aws_route53_record.failover : record.name == "failover.api.models.example.com"])
    error_message = "Both failover records carry the failover record name."
  }
}

run "region_names_point_at_their_targets" {
  command = plan

  assert {
    condition = (
      keys(aws_route53_record.region) == ["aws-us-west-2"]
      && aws_route53_record.region["aws-us-west-2"].name == "us-west-2.api.models.example.com"
      && aws_route53_record.region["aws-us-west-2"].records == toset(["k8s-mlpservi-modelser-0123456789-0123456789abcdef.elb.us-west-2.amazonaws.com"])
    )
    error_message = "A region with a target gets its own CNAME; regions without one are left to their operators."
  }
}

run "dnssec_signing_and_query_logs" {
  command = plan

  assert {
    condition     = aws_kms_key.dnssec[0].customer_master_key_spec == "ECC_NIST_P256" && aws_kms_key.dnssec[0].key_usage == "SIGN_VERIFY"
    error_message = "The key-signing key must be an ECC_NIST_P256 signing key."
  }

  assert {
    condition     = aws_route53_hosted_zone_dnssec.this[0].signing_status == "SIGNING"
    error_message = "The zone must be signed."
  }

  assert {
    condition     = aws_route53_query_log.this.cloudwatch_log_group_arn == aws_cloudwatch_log_group.query_logs.arn && aws_cloudwatch_log_group.query_logs.kms_key_id == aws_kms_key.query_logs.arn
    error_message = "Queries must be logged to the encrypted query-log group."
  }
}

run "catalogue_outputs" {
  command = plan

  assert {
    condition = output.catalogue_dns == {
      provider                       = "route53"
      zone                           = "models.example.com"
      record                         = "api.models.example.com"
      latency_record                 = "latency.api.models.example.com"
      failover_record                = "failover.api.models.example.com"
      ttl                            = 60
      health_check_interval          = 10
      health_check_failure_threshold = 3
    }
    error_message = "catalogue_dns must carry the catalogue's dns fields."
  }

  assert {
    condition     = [for region in output.catalogue_regions : region.name] == ["aws-us-west-2", "gcp-europe-west1", "azure-southeastasia"] && output.catalogue_regions[0].primary && output.catalogue_regions[1].latency_region == "eu-west-1"
    error_message = "catalogue_regions must keep the regions' order and fields."
  }
}

run "single_region_fails_over_to_itself" {
  command = plan

  variables {
    regions = [{
      name             = "aws-us-west-2"
      provider         = "aws"
      cloud_region     = "us-west-2"
      primary          = true
      serving_endpoint = "https://us-west-2.api.models.example.com"
      dns_record       = "us-west-2.api.models.example.com"
    }]
    dnssec_signing = false
  }

  assert {
    condition     = aws_route53_record.failover["SECONDARY"].records == toset(["us-west-2.api.models.example.com"]) && length(aws_kms_key.dnssec) == 0 && output.ds_record == null
    error_message = "With one region SECONDARY is the primary again (as dns.py does); without DNSSEC there is no signing key."
  }
}
