variable "region" {
  description = "The AWS region of this serving region, the catalogue's cloud_region (e.g. us-west-2). The aws provider must be configured for it."
  type        = string

  validation {
    # The pattern include/catalogue.py accepts for an AWS cloud_region.
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-west-2."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (e.g. mlp): the cluster is <prefix>-<region>, the serving role <prefix>-model-serving-<region>."
  type        = string

  validation {
    # 16 characters keep "<prefix>-model-serving-<region>" within an IAM role name's 64.
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2 to 16 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "tags" {
  description = "Tags added to every resource, besides platform, managed-by and region."
  type        = map(string)
  default     = {}
}

# Network

variable "vpc_cidr" {
  description = "The VPC's /16. It is cut into /20 subnets: public ones first (one per zone), then private ones."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = try(endswith(var.vpc_cidr, "/16") && cidrhost(var.vpc_cidr, 0) == split("/", var.vpc_cidr)[0], false)
    error_message = "vpc_cidr must be an IPv4 /16 network address such as 10.0.0.0/16."
  }
}

variable "availability_zones" {
  description = "The three availability zones to use; null takes the region's first three that need no opt-in."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null || try(length(distinct(var.availability_zones)) == 3 && length(var.availability_zones) == 3, false)
    error_message = "availability_zones must name three different zones."
  }
}

variable "log_retention_days" {
  description = "Days the EKS control-plane logs and the VPC flow logs are kept in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    # The retention periods CloudWatch Logs accepts.
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (e.g. 90, 365, 731)."
  }
}

# Cluster

variable "kubernetes_version" {
  description = "Kubernetes minor version of the EKS control plane and node groups (e.g. 1.33)."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as 1.33."
  }
}

variable "endpoint_public_access" {
  description = "Open the cluster's API endpoint to public_access_cidrs as well as to the VPC. False: the API is reachable only from inside the VPC (or peered networks)."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "Public CIDR blocks allowed to reach the public API endpoint when endpoint_public_access is true (CI runners, operators, the Airflow workers of other clouds)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.public_access_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "Each public_access_cidrs entry must be an IPv4 CIDR block, and not 0.0.0.0/0."
  }

  validation {
    condition     = !var.endpoint_public_access || length(var.public_access_cidrs) > 0
    error_message = "public_access_cidrs must list at least one block when endpoint_public_access is true: EKS would otherwise open the endpoint to the whole internet."
  }
}

variable "cluster_admin_principal_arns" {
  description = "IAM roles or users given cluster-admin through EKS access entries (e.g. the platform team's role and the CI role that deploys). Named explicitly: the identity that happens to apply gets no implicit admin."
  type        = list(string)

  validation {
    condition     = length(var.cluster_admin_principal_arns) > 0 && alltrue([for arn in var.cluster_admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$", arn))])
    error_message = "cluster_admin_principal_arns must list at least one IAM role or user ARN (arn:aws:iam::ACCOUNT:role/NAME)."
  }
}

variable "on_demand_instance_types" {
  description = "Instance types of the on-demand node group: system pods and the model-serving Deployment."
  type        = list(string)
  default     = ["m6i.xlarge"]

  validation {
    condition     = length(var.on_demand_instance_types) > 0
    error_message = "on_demand_instance_types must name at least one instance type."
  }
}

variable "on_demand_min_size" {
  description = "Fewest on-demand nodes: serving's PodDisruptionBudget keeps two replicas, spread over the zones."
  type        = number
  default     = 3

  validation {
    condition     = var.on_demand_min_size >= 2
    error_message = "on_demand_min_size must be at least 2: the serving PodDisruptionBudget keeps two replicas."
  }
}

variable "on_demand_max_size" {
  description = "Most on-demand nodes."
  type        = number
  default     = 9

  validation {
    condition     = var.on_demand_max_size >= var.on_demand_min_size
    error_message = "on_demand_max_size must be at least on_demand_min_size."
  }
}

variable "spot_instance_types" {
  description = "Instance types of the Spot node group for interruptible batch work; several similar types make Spot capacity easier to find."
  type        = list(string)
  default     = ["m6i.2xlarge", "m6a.2xlarge", "m5.2xlarge", "m7i.2xlarge"]

  validation {
    condition     = length(var.spot_instance_types) >= 2
    error_message = "spot_instance_types must name at least two instance types, so one Spot pool running dry does not stop the group."
  }
}

variable "spot_max_size" {
  description = "Most Spot nodes (the group scales from zero)."
  type        = number
  default     = 10

  validation {
    condition     = var.spot_max_size >= 1
    error_message = "spot_max_size must be at least 1."
  }
}

variable "node_disk_size_gib" {
  description = "Size of each node's encrypted gp3 root volume, in GiB (images and emptyDir volumes live there)."
  type        = number
  default     = 50

  validation {
    condition     = var.node_disk_size_gib >= 20 && var.node_disk_size_gib <= 1024
    error_message = "node_disk_size_gib must be between 20 and 1024."
  }
}

# Model bucket

variable "bucket_name" {
  description = "The model bucket, the catalogue's bucket for this region. Bucket names are global: null means <prefix>-models-<region>."
  type        = string
  default     = null

  validation {
    # The catalogue's S3 pattern, 5 characters shorter: the access-log bucket is <bucket_name>-logs.
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,56}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3 to 58 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten or deleted model object is kept as a noncurrent version before it is deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_retention_days >= 1 && var.noncurrent_version_retention_days <= 3650
    error_message = "noncurrent_version_retention_days must be between 1 and 3650."
  }
}

variable "access_log_retention_days" {
  description = "Days the model bucket's server access logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_retention_days >= 1 && var.access_log_retention_days <= 3650
    error_message = "access_log_retention_days must be between 1 and 3650."
  }
}

variable "peer_model_buckets" {
  description = "Model buckets of the platform's other AWS regions, which the replicator also reads and writes: the bucket name and the ARN of the KMS key it is encrypted with."
  type = list(object({
    name        = string
    kms_key_arn = string
  }))
  default = []

  validation {
    condition = alltrue([for bucket in var.peer_model_buckets :
      can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket.name)) && can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", bucket.kms_key_arn))
    ])
    error_message = "Each peer_model_buckets entry needs an S3 bucket name and a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

# Platform identities

variable "service_accounts" {
  description = <<-EOT
    Kubernetes service accounts (NAMESPACE/NAME) each IRSA role trusts. model_serving: the serving pods
    (k8s/base). replicator, failover, cost: the pods that run those Airflow tasks; with the CeleryExecutor of
    k8s/airflow every task runs on the chart's workers (release airflow: airflow/airflow-worker), and each
    Airflow connection assumes its own role with the worker's token (docs/terraform-aws.md).
  EOT
  type = object({
    model_serving = optional(list(string), ["mlp-serving/model-serving"])
    replicator    = optional(list(string), ["airflow/airflow-worker"])
    failover      = optional(list(string), ["airflow/airflow-worker"])
    cost          = optional(list(string), ["airflow/airflow-worker"])
  })
  default = {}

  validation {
    condition = alltrue([for accounts in values(var.service_accounts) : length(accounts) > 0 && alltrue([
      for account in accounts : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", account))
    ])])
    error_message = "Each role needs at least one service account, written NAMESPACE/NAME with Kubernetes names (lowercase letters, digits, hyphens)."
  }
}

variable "hosted_zone_id" {
  description = "Route 53 hosted zone whose traffic records the failover role may change (the dns root's zone_id). Null: no failover role in this region."
  type        = string
  default     = null

  validation {
    condition     = var.hosted_zone_id == null || can(regex("^Z[A-Z0-9]{1,31}$", var.hosted_zone_id))
    error_message = "hosted_zone_id must be a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ."
  }
}

variable "traffic_record_names" {
  description = "The only record names the failover role may change: the catalogue's dns.record, dns.latency_record and dns.failover_record (the dns root's traffic_record_names)."
  type        = list(string)
  default     = []

  validation {
    condition     = var.hosted_zone_id == null || length(var.traffic_record_names) > 0
    error_message = "traffic_record_names must name the traffic records when hosted_zone_id is set."
  }

  validation {
    # Route 53 compares the condition key with lowercase names without the trailing dot.
    condition     = alltrue([for name in var.traffic_record_names : can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", name))])
    error_message = "Each traffic_record_names entry must be a lowercase host name without a trailing dot."
  }
}
