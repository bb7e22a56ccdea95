module "dns" {
  source = "../../modules/dns"

  zone_name                      = var.zone_name
  weighted_record_name           = var.weighted_record_name
  latency_record_name            = var.latency_record_name
  failover_record_name           = var.failover_record_name
  ttl                            = var.ttl
  health_check_interval          = var.health_check_interval
  health_check_failure_threshold = var.health_check_failure_threshold
  dnssec_signing                 = var.dnssec_signing
  regions                        = var.regions
}
