output "zone_id" {
  description = "The hosted zone's id: the aws module's hosted_zone_id, which scopes the failover role."
  value       = aws_route53_zone.this.zone_id
}

output "zone_arn" {
  description = "ARN of the hosted zone."
  value       = aws_route53_zone.this.arn
}

output "name_servers" {
  description = "The zone's name servers: delegate zone_name to them in the parent zone (NS records)."
  value       = aws_route53_zone.this.name_servers
}

output "ds_record" {
  description = "The DS record the parent zone must publish for DNSSEC validation; null without dnssec_signing."
  value       = var.dnssec_signing ? aws_route53_key_signing_key.this[0].ds_record : null
}

output "health_check_ids" {
  description = "Route 53 health check id by region name."
  value       = { for name, check in aws_route53_health_check.region : name => check.id }
}

output "traffic_record_names" {
  description = "The weighted, latency and failover record names: the only names the failover role may change (the aws module's traffic_record_names)."
  value       = [var.weighted_record_name, var.latency_record_name, var.failover_record_name]
}

output "failover_targets" {
  description = "Region each failover record pointed to when created, by role (PRIMARY, SECONDARY)."
  value       = local.failover_targets
}

output "catalogue_dns" {
  description = "The region catalogue's dns section, without its connection (include/catalogue.py DnsConfig)."
  value = {
    provider                       = "route53"
    zone                           = var.zone_name
    record                         = var.weighted_record_name
    latency_record                 = var.latency_record_name
    failover_record                = var.failover_record_name
    ttl                            = var.ttl
    health_check_interval          = var.health_check_interval
    health_check_failure_threshold = var.health_check_failure_threshold
  }
}

output "catalogue_regions" {
  description = "The regions in catalogue order with the fields DNS decides: name, provider, cloud_region, primary, serving_endpoint, dns_record, latency_region."
  value = [for region in var.regions : {
    name             = region.name
    provider         = region.provider
    cloud_region     = region.cloud_region
    primary          = region.primary
    serving_endpoint = region.serving_endpoint
    dns_record       = region.dns_record
    latency_region   = region.latency_region
  }]
}
