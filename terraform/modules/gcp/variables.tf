variable "project_id" {
  description = "The GCP project everything is created in (its APIs must be enabled: see docs/terraform-gcp.md)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id: 6 to 30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "The GCP region of this serving region, the catalogue's cloud_region (e.g. europe-west1)."
  type        = string

  validation {
    # The pattern include/catalogue.py accepts for a GCP cloud_region.
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region name such as europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (e.g. mlp): the cluster is <prefix>-<region>, the serving service account <prefix>-model-serving. Service accounts are per project, so two regions in one project need two prefixes."
  type        = string

  validation {
    # 16 characters keep "<prefix>-model-serving" within a service account id's 30.
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2 to 16 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes them, besides platform and managed-by."
  type        = map(string)
  default     = {}
}

variable "bucket_name" {
  description = "The model bucket, the catalogue's bucket for this region. Bucket names are global: null means <prefix>-models-<region>."
  type        = string
  default     = null

  validation {
    # The catalogue's GCS pattern, 5 characters shorter: the access-log bucket is <bucket_name>-logs.
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9._-]{1,56}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3 to 58 lowercase letters, digits, dots, hyphens or underscores, starting and ending with a letter or digit."
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
  description = "Days the model bucket's access logs are kept."
  type        = number
  default     = 90

  validation {
    condition     = var.access_log_retention_days >= 1 && var.access_log_retention_days <= 3650
    error_message = "access_log_retention_days must be between 1 and 3650."
  }
}

variable "replicator_members" {
  description = "IAM members (e.g. serviceAccount:airflow@p.iam.gserviceaccount.com) that replicate models into the bucket: roles/storage.objectAdmin on it."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.replicator_members : can(regex("^(serviceAccount|user|group|principal|principalSet):.+", member))])
    error_message = "Each replicator_members entry must be an IAM member such as serviceAccount:name@project.iam.gserviceaccount.com."
  }
}

variable "subnet_cidr" {
  description = "Primary range of the cluster's subnet: the nodes' addresses."
  type        = string
  default     = "10.10.0.0/20"

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0))
    error_message = "subnet_cidr must be an IPv4 CIDR block."
  }
}

variable "pods_cidr" {
  description = "Secondary range of the subnet for pod addresses (VPC-native cluster)."
  type        = string
  default     = "10.16.0.0/14"

  validation {
    condition     = can(cidrhost(var.pods_cidr, 0))
    error_message = "pods_cidr must be an IPv4 CIDR block."
  }
}

variable "services_cidr" {
  description = "Secondary range of the subnet for Service cluster IPs."
  type        = string
  default     = "10.20.0.0/20"

  validation {
    condition     = can(cidrhost(var.services_cidr, 0))
    error_message = "services_cidr must be an IPv4 CIDR block."
  }
}

variable "control_plane_cidr" {
  description = "The /28 the GKE control plane's private endpoint takes; it must not overlap the subnet's ranges."
  type        = string
  default     = "172.16.0.0/28"

  validation {
    condition     = can(cidrhost(var.control_plane_cidr, 0)) && endswith(var.control_plane_cidr, "/28")
    error_message = "control_plane_cidr must be an IPv4 /28 block."
  }
}

variable "control_plane_authorized_networks" {
  description = "Public CIDR blocks allowed to reach the control plane's public endpoint (e.g. CI runners, an office). Empty: only the VPC reaches it."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []

  validation {
    condition     = alltrue([for network in var.control_plane_authorized_networks : can(cidrhost(network.cidr_block, 0)) && network.cidr_block != "0.0.0.0/0"])
    error_message = "Each authorized network must be an IPv4 CIDR block, and not 0.0.0.0/0."
  }
}

variable "release_channel" {
  description = "GKE release channel the control plane and nodes are upgraded on."
  type        = string
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE"], var.release_channel)
    error_message = "release_channel must be RAPID, REGULAR or STABLE."
  }
}

variable "deletion_protection" {
  description = "Refuse to destroy the cluster; set false, apply, then destroy to tear a region down."
  type        = bool
  default     = true
}

variable "general_machine_type" {
  description = "Machine type of the on-demand node pool: system pods and the model-serving Deployment."
  type        = string
  default     = "n2-standard-4"
}

variable "general_min_nodes_per_zone" {
  description = "Fewest on-demand nodes in each of the region's zones."
  type        = number
  default     = 1

  validation {
    condition     = var.general_min_nodes_per_zone >= 1
    error_message = "general_min_nodes_per_zone must be at least 1: system pods and serving need a node."
  }
}

variable "general_max_nodes_per_zone" {
  description = "Most on-demand nodes in each of the region's zones."
  type        = number
  default     = 4

  validation {
    condition     = var.general_max_nodes_per_zone >= var.general_min_nodes_per_zone
    error_message = "general_max_nodes_per_zone must be at least general_min_nodes_per_zone."
  }
}

variable "spot_machine_type" {
  description = "Machine type of the Spot node pool, for interruptible batch work (feature backfills, batch scoring)."
  type        = string
  default     = "n2-standard-8"
}

variable "spot_max_nodes" {
  description = "Most Spot nodes across the region (the pool scales from zero)."
  type        = number
  default     = 10

  validation {
    condition     = var.spot_max_nodes >= 1
    error_message = "spot_max_nodes must be at least 1."
  }
}

variable "serving_namespace" {
  description = "Kubernetes namespace of the model-serving workload (k8s/base)."
  type        = string
  default     = "mlp-serving"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.serving_namespace))
    error_message = "serving_namespace must be a Kubernetes namespace (a DNS label)."
  }
}

variable "serving_service_account" {
  description = "Kubernetes service account of the model-serving workload, bound to the serving Google service account."
  type        = string
  default     = "model-serving"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.serving_service_account))
    error_message = "serving_service_account must be a Kubernetes service account name (a DNS label)."
  }
}

variable "artifact_repository_id" {
  description = "Artifact Registry Docker repository the region's images are pulled from (<region>-docker.pkg.dev/<project>/<id>)."
  type        = string
  default     = "mlp"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.artifact_repository_id))
    error_message = "artifact_repository_id must be lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "image_versions_kept" {
  description = "Newest image versions of each package the registry's cleanup policy always keeps."
  type        = number
  default     = 20

  validation {
    condition     = var.image_versions_kept >= 1
    error_message = "image_versions_kept must be at least 1."
  }
}

variable "serving_container_port" {
  description = "Port the model-serving container listens on (k8s/base: the Service's targetPort), opened to Google's load balancers."
  type        = number
  default     = 8080

  validation {
    condition     = var.serving_container_port >= 1 && var.serving_container_port <= 65535
    error_message = "serving_container_port must be a TCP port."
  }
}

variable "rbac_security_group" {
  description = "Google Groups for RBAC: the gke-security-groups@<your domain> group whose member groups RoleBindings may name. Null: off (needs Google Workspace)."
  type        = string
  default     = null

  validation {
    condition     = var.rbac_security_group == null || can(regex("^gke-security-groups@.+", var.rbac_security_group))
    error_message = "rbac_security_group must be gke-security-groups@<your domain>."
  }
}
