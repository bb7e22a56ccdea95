variable "region" {
  description = "AWS region of the state bucket and the lock table."
  type        = string
  default     = "us-west-2"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-west-2."
  }
}

variable "state_bucket_name" {
  description = "The state bucket (bucket names are global, so choose one your organisation owns, e.g. <org>-mlp-terraform-state). Its access logs go to <name>-logs."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,56}[a-z0-9]$", var.state_bucket_name))
    error_message = "state_bucket_name must be 3 to 58 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit."
  }
}

variable "noncurrent_state_retention_days" {
  description = "Days an overwritten state version is kept, for recovery from a bad apply."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_state_retention_days >= 1
    error_message = "noncurrent_state_retention_days must be at least 1."
  }
}

variable "tags" {
  description = "Tags added to every resource, besides platform, managed-by and root."
  type        = map(string)
  default     = {}
}
