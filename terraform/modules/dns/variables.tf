variable "zone_name" {
  description = "The public hosted zone the platform is served under: the catalogue's dns.zone (e.g. models.example.com)."
  type        = string

  validation {
    # The host-name pattern include/catalogue.py accepts.
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.zone_name)) && length(var.zone_name) <= 253
    error_message = "zone_name must be a lowercase domain name without a trailing dot, such as models.example.com."
  }
}

variable "weighted_record_name" {
  description = "The name clients resolve, one weighted CNAME per region (the catalogue's dns.record); the failover DAGs move its weights."
  type        = string

  validation {
    condition     = endswith(var.weighted_record_name, ".${var.zone_name}") && can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.weighted_record_name))
    error_message = "weighted_record_name must be a lowercase host name inside zone_name."
  }
}

variable "latency_record_name" {
  description = "The latency-routed name, one CNAME per serving region (the catalogue's dns.latency_record)."
  type        = string

  validation {
    condition     = endswith(var.latency_record_name, ".${var.zone_name}") && can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.latency_record_name))
    error_message = "latency_record_name must be a lowercase host name inside zone_name."
  }
}

variable "failover_record_name" {
  description = "The failover-routed name, a PRIMARY and a SECONDARY CNAME (the catalogue's dns.failover_record)."
  type        = string

  validation {
    condition     = endswith(var.failover_record_name, ".${var.zone_name}") && can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.failover_record_name))
    error_message = "failover_record_name must be a lowercase host name inside zone_name."
  }

  validation {
    condition     = length(distinct([var.weighted_record_name, var.latency_record_name, var.failover_record_name])) == 3
    error_message = "weighted_record_name, latency_record_name and failover_record_name must be three different names."
  }
}

variable "ttl" {
  description = "TTL of every traffic record, in seconds: how long resolvers keep an answer after a failover moves it."
  type        = number
  default     = 60

  validation {
    condition     = var.ttl >= 1 && var.ttl <= 86400 && floor(var.ttl) == var.ttl
    error_message = "ttl must be a whole number of seconds from 1 to 86400."
  }
}

variable "health_check_interval" {
  description = "Seconds between two Route 53 health checks of a region from each checker (10 is the fast interval)."
  type        = number
  default     = 10

  validation {
    condition     = contains([10, 30], var.health_check_interval)
    error_message = "health_check_interval must be 10 or 30: the only intervals Route 53 offers."
  }
}

variable "health_check_failure_threshold" {
  description = "Consecutive failed checks before Route 53 considers a region unhealthy (and back): with a 10-second interval, 3 fails a region in about 30 seconds."
  type        = number
  default     = 3

  validation {
    condition     = var.health_check_failure_threshold >= 1 && var.health_check_failure_threshold <= 10 && floor(var.health_check_failure_threshold) == var.health_check_failure_threshold
    error_message = "health_check_failure_threshold must be a whole number from 1 to 10."
  }
}

variable "health_check_regions" {
  description = "Route 53 checker regions that probe each region (at least three); null uses Route 53's default set."
  type        = list(string)
  default     = null

  validation {
    condition     = var.health_check_regions == null || try(length(var.health_check_regions) >= 3, false)
    error_message = "health_check_regions must name at least three Route 53 checker regions."
  }
}

variable "baseline_weight" {
  description = "Weight each region's weighted record is created with; the failover DAGs change it afterwards and Terraform leaves it alone."
  type        = number
  default     = 100

  validation {
    condition     = var.baseline_weight >= 1 && var.baseline_weight <= 255
    error_message = "baseline_weight must be 1 to 255."
  }
}

variable "regions" {
  description = <<-EOT
    The serving regions in catalogue order (the first non-primary region is the failover record's SECONDARY):
    name (e.g. aws-us-west-2), provider (aws, gcp or azure), cloud_region, primary (exactly one),
    serving_endpoint (http(s) URL whose /ready is health-checked), dns_record (the region's own name, which
    the traffic records point to), latency_region (the AWS region standing for it in latency routing; required
    off AWS) and target (optional: the host name, e.g. the region's load balancer, that dns_record is a CNAME to).
  EOT
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

  validation {
    condition     = length(var.regions) >= 1 && length(distinct([for region in var.regions : region.name])) == length(var.regions)
    error_message = "regions must list at least one region, each name once."
  }

  validation {
    condition     = length([for region in var.regions : region.name if region.primary]) == 1
    error_message = "Exactly one region must be primary."
  }

  validation {
    condition     = alltrue([for region in var.regions : can(regex("^[a-z0-9][a-z0-9-]{1,40}$", region.name)) && contains(["aws", "gcp", "azure"], region.provider)])
    error_message = "Each region needs a catalogue name (lowercase letters, digits, hyphens) and a provider of aws, gcp or azure."
  }

  validation {
    # What dns.py parses: scheme, host, optional port and path; no query or fragment.
    condition     = alltrue([for region in var.regions : can(regex("^https?://[a-z0-9.-]+(:[0-9]{1,5})?(/[^?#]*)?$", region.serving_endpoint))])
    error_message = "Each serving_endpoint must be an http(s) URL with a lowercase host, an optional port and path, and no query."
  }

  validation {
    condition     = alltrue([for region in var.regions : endswith(region.dns_record, ".${var.zone_name}")])
    error_message = "Each region's dns_record must be inside zone_name."
  }

  validation {
    condition = alltrue([for region in var.regions :
      region.provider == "aws" ? region.latency_region == null || can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", region.latency_region)) : can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", region.latency_region))
    ])
    error_message = "Regions off AWS need a latency_region, an AWS region name (e.g. eu-west-1); AWS regions default to their own."
  }
}

variable "dnssec_signing" {
  description = "Sign the zone with DNSSEC (a KMS key-signing key). The parent zone must then publish the ds_record output; until it does, resolvers treat the zone as unsigned."
  type        = bool
  default     = true
}

variable "query_log_retention_days" {
  description = "Days the zone's DNS query logs are kept in CloudWatch Logs (us-east-1)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.query_log_retention_days)
    error_message = "query_log_retention_days must be a retention period CloudWatch Logs accepts (e.g. 90, 365, 731)."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes them, besides platform and managed-by."
  type        = map(string)
  default     = {}
}
