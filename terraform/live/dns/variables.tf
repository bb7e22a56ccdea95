variable "zone_name" {
  description = "The public hosted zone the platform is served under (the catalogue's dns.zone)."
  type        = string
}

variable "weighted_record_name" {
  description = "The name clients resolve (the catalogue's dns.record)."
  type        = string
}

variable "latency_record_name" {
  description = "The latency-routed name (the catalogue's dns.latency_record)."
  type        = string
}

variable "failover_record_name" {
  description = "The failover-routed name (the catalogue's dns.failover_record)."
  type        = string
}

variable "ttl" {
  description = "TTL of the traffic records, in seconds."
  type        = number
  default     = 60
}

variable "health_check_interval" {
  description = "Seconds between Route 53 health checks of a region: 10 or 30."
  type        = number
  default     = 10
}

variable "health_check_failure_threshold" {
  description = "Consecutive failed checks before a region is unhealthy."
  type        = number
  default     = 3
}

variable "dnssec_signing" {
  description = "Sign the zone with DNSSEC; publish the ds_record output in the parent zone afterwards."
  type        = bool
  default     = true
}

variable "regions" {
  description = "The serving regions in catalogue order: see the dns module's regions variable."
  type = list(object({
    name             = string
    provider         = string
    cloud_region     = string
    primary          = optional(bool, false)
    serving_endpoint = string
    dns_record       = string
    latency_region   = optional(string)
    target           = optional(string)
  }))
}

variable "airflow_connection_id" {
  description = "The Airflow aws connection the failover DAGs change Route 53 through (the catalogue's dns.connection)."
  type        = string
  default     = "aws_route53"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+$", var.airflow_connection_id))
    error_message = "airflow_connection_id must be an Airflow connection id: letters, digits, _ . -"
  }
}

variable "tags" {
  description = "Tags added to every resource, besides platform, managed-by and root."
  type        = map(string)
  default     = {}
}
