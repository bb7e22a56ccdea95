variable "bucket_name" {
  description = "The access-log bucket (bucket names are global)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be an S3 bucket name: 3 to 63 lowercase letters, digits, dots or hyphens."
  }
}

variable "logged_bucket_name" {
  description = "The bucket whose server access logs are delivered here, under s3/<logged_bucket_name>/."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.logged_bucket_name))
    error_message = "logged_bucket_name must be an S3 bucket name."
  }
}

variable "retention_days" {
  description = "Days an access-log object is kept."
  type        = number
  default     = 365

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 3650
    error_message = "retention_days must be between 1 and 3650."
  }
}

variable "tags" {
  description = "Tags of the bucket."
  type        = map(string)
  default     = {}
}
