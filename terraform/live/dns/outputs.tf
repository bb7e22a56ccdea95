output "zone_id" {
  description = "The hosted zone's id: hosted_zone_id of the AWS region roots."
  value       = module.dns.zone_id
}

output "name_servers" {
  description = "Delegate zone_name to these name servers in the parent zone."
  value       = module.dns.name_servers
}

output "ds_record" {
  description = "The DS record to publish in the parent zone once delegation works (null without DNSSEC)."
  value       = module.dns.ds_record
}

output "traffic_record_names" {
  description = "The three traffic record names: traffic_record_names of the AWS region roots."
  value       = module.dns.traffic_record_names
}

output "health_check_ids" {
  description = "Route 53 health check id by region name."
  value       = module.dns.health_check_ids
}

output "catalogue_dns" {
  description = "The region catalogue's dns section (read by python -m include.terraform_catalogue)."
  value       = merge(module.dns.catalogue_dns, { connection = var.airflow_connection_id })
}

output "catalogue_regions" {
  description = "The regions in catalogue order with their DNS fields (read by python -m include.terraform_catalogue)."
  value       = module.dns.catalogue_regions
}
