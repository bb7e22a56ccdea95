# The platform's Route 53 hosted zone, one health check per region, and the three sets of traffic records the
# failover DAGs steer (include/failover/dns.py), created exactly as the platform would create them: the same
# names, set identifiers, CNAME type, TTL and health checks, so Terraform and the DAGs agree on what exists.
#
# Route 53 is global, but the DNSSEC signing key and the query-log group must live in us-east-1: configure
# the aws provider passed to this module for us-east-1.
#
# After creation the DAGs own what moves: the weights of the weighted records and the targets of the failover
# records (ignored below), and the latency records of drained regions, which they delete and recreate. Apply
# this module when no failover is in progress (python -m include.failover status); during one, a plan would
# recreate the latency record the DAGs removed.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  regions = { for region in var.regions : region.name => region }

  # serving_endpoint -> [scheme, host, port or null, path or null], as dns.py reads it with urlsplit.
  endpoints = { for name, region in local.regions : name => regex("^(https?)://([^/:]+)(?::([0-9]+))?(/.*)?$", region.serving_endpoint) }

  # The health check dns.py's health_check_config describes: HTTP(S) GET of <path>/ready on the endpoint.
  health_checks = { for name, parts in local.endpoints : name => {
    type          = upper(parts[0])
    host          = parts[1]
    is_ip_address = can(cidrhost("${parts[1]}/32", 0))
    port          = parts[2] != null ? tonumber(parts[2]) : (parts[0] == "https" ? 443 : 80)
    resource_path = "${replace(parts[3] == null ? "" : parts[3], "/\\/+$/", "")}/ready"
  } }

  # The failover record's PRIMARY is the primary region, its SECONDARY the first other region in catalogue
  # order (or the primary again when it is the only region), as Route53Traffic._failover_targets picks them.
  primary_region   = one([for region in var.regions : region.name if region.primary])
  secondary_region = try([for region in var.regions : region.name if !region.primary][0], local.primary_region)
  failover_targets = { PRIMARY = local.primary_region, SECONDARY = local.secondary_region }

  tags = merge(var.tags, {
    platform   = "mlp"
    managed-by = "terraform"
  })
}

resource "aws_route53_zone" "this" {
  name    = var.zone_name
  comment = "mlp serving traffic; record weights and failover targets are moved by the failover DAGs"
  tags    = local.tags
}

resource "aws_route53_health_check" "region" {
  for_each = local.health_checks

  type              = each.value.type
  fqdn              = each.value.is_ip_address ? null : each.value.host
  ip_address        = each.value.is_ip_address ? each.value.host : null
  port              = each.value.port
  resource_path     = each.value.resource_path
  request_interval  = var.health_check_interval
  failure_threshold = var.health_check_failure_threshold
  regions           = var.health_check_regions

  # The tags dns.py puts on the health checks it creates.
  tags = merge(local.tags, { Name = each.key, mlp-zone = var.zone_name })
}

# dns.record: one weighted CNAME per region, set identifier = the region's name.
resource "aws_route53_record" "weighted" {
  for_each = local.regions

  zone_id         = aws_route53_zone.this.zone_id
  name            = var.weighted_record_name
  type            = "CNAME"
  ttl             = var.ttl
  records         = [each.value.dns_record]
  set_identifier  = each.key
  health_check_id = aws_route53_health_check.region[each.key].id

  weighted_routing_policy {
    weight = var.baseline_weight
  }

  lifecycle {
    ignore_changes = [weighted_routing_policy] # the failover DAGs drain and restore regions by weight
  }
}

# dns.latency_record: one latency CNAME per region, set identifier = "<region>/latency".
resource "aws_route53_record" "latency" {
  for_each = local.regions

  zone_id         = aws_route53_zone.this.zone_id
  name            = var.latency_record_name
  type            = "CNAME"
  ttl             = var.ttl
  records         = [each.value.dns_record]
  set_identifier  = "${each.key}/latency"
  health_check_id = aws_route53_health_check.region[each.key].id

  latency_routing_policy {
    region = coalesce(each.value.latency_region, each.value.cloud_region)
  }
}

# dns.failover_record: a PRIMARY and a SECONDARY CNAME, set identifier = the role.
resource "aws_route53_record" "failover" {
  for_each = local.failover_targets

  zone_id         = aws_route53_zone.this.zone_id
  name            = var.failover_record_name
  type            = "CNAME"
  ttl             = var.ttl
  records         = [local.regions[each.value].dns_record]
  set_identifier  = each.key
  health_check_id = aws_route53_health_check.region[each.value].id

  failover_routing_policy {
    type = each.key
  }

  lifecycle {
    # Failing over re-points PRIMARY and SECONDARY (target and health check) at the serving regions.
    ignore_changes = [records, health_check_id]
  }
}

# Each region's own name, where its target (its load balancer's host name) is known.
resource "aws_route53_record" "region" {
  for_each = { for name, region in local.regions : name => region if region.target != null }

  zone_id = aws_route53_zone.this.zone_id
  name    = each.value.dns_record
  type    = "CNAME"
  ttl     = var.ttl
  records = [each.value.target]
}
