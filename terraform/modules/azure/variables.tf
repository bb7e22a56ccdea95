variable "location" {
  description = "The Azure region of this serving region, the catalogue's cloud_region (e.g. eastus)."
  type        = string

  validation {
    # The pattern include/catalogue.py accepts for an Azure cloud_region.
    condition     = can(regex("^[a-z]+[0-9]*$", var.location))
    error_message = "location must be an Azure region name such as eastus or southeastasia."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (e.g. mlp): the resource group and cluster are <prefix>-<location>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2 to 16 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "tags" {
  description = "Tags added to every resource, besides platform and managed-by."
  type        = map(string)
  default     = {}
}

variable "vnet_cidr" {
  description = "Address space of the region's virtual network."
  type        = string
  default     = "10.30.0.0/16"

  validation {
    condition     = can(cidrhost(var.vnet_cidr, 0))
    error_message = "vnet_cidr must be an IPv4 CIDR block."
  }
}

variable "node_subnet_cidr" {
  description = "The nodes' subnet, inside vnet_cidr. With Azure CNI Overlay only nodes take addresses from it."
  type        = string
  default     = "10.30.0.0/20"

  validation {
    condition     = can(cidrhost(var.node_subnet_cidr, 0))
    error_message = "node_subnet_cidr must be an IPv4 CIDR block."
  }
}

variable "pod_cidr" {
  description = "The overlay range pod addresses come from; it is private to the cluster and may repeat across regions."
  type        = string
  default     = "192.168.0.0/16"

  validation {
    condition     = can(cidrhost(var.pod_cidr, 0))
    error_message = "pod_cidr must be an IPv4 CIDR block."
  }
}

variable "service_cidr" {
  description = "Range of Service cluster IPs; it must overlap neither the VNet nor pod_cidr. kube-dns takes its tenth address."
  type        = string
  default     = "10.31.0.0/16"

  validation {
    condition     = can(cidrhost(var.service_cidr, 10))
    error_message = "service_cidr must be an IPv4 CIDR block with at least 16 addresses."
  }
}

variable "api_server_authorized_ip_ranges" {
  description = "Public CIDR blocks allowed to reach the AKS API server (CI runners, operators). Required: AKS opens the API server to the internet when this is empty."
  type        = list(string)

  validation {
    condition     = length(var.api_server_authorized_ip_ranges) > 0 && alltrue([for cidr in var.api_server_authorized_ip_ranges : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "api_server_authorized_ip_ranges must list at least one IPv4 CIDR block, and not 0.0.0.0/0."
  }
}

variable "admin_group_object_ids" {
  description = "Entra ID groups given cluster-admin through Azure RBAC; kubectl needs an Entra ID login (local accounts are disabled)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.admin_group_object_ids : can(regex("^[0-9a-fA-F-]{36}$", id))])
    error_message = "Each admin_group_object_ids entry must be an Entra ID object id (a GUID)."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version (e.g. 1.31); null takes AKS's default. Patches arrive through the patch upgrade channel."
  type        = string
  default     = null

  validation {
    condition     = var.kubernetes_version == null || can(regex("^[0-9]+\\.[0-9]+$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as 1.31."
  }
}

variable "availability_zones" {
  description = "Availability zones every node pool spreads over; [] in a region without zones."
  type        = list(string)
  default     = ["1", "2", "3"]

  validation {
    condition     = alltrue([for zone in var.availability_zones : contains(["1", "2", "3"], zone)])
    error_message = "availability_zones may only contain \"1\", \"2\" and \"3\"."
  }
}

# The VM sizes need a local temp disk (the "d" in Ddsv5) at least as large as the ephemeral OS disk.
variable "system_vm_size" {
  description = "VM size of the system node pool (critical add-ons only). It needs a temp disk of at least 64 GiB for the ephemeral OS disk."
  type        = string
  default     = "Standard_D2ds_v5"
}

variable "general_vm_size" {
  description = "VM size of the on-demand user pool that runs model serving. It needs a temp disk of at least 128 GiB."
  type        = string
  default     = "Standard_D4ds_v5"
}

variable "general_min_count" {
  description = "Fewest nodes of the on-demand user pool: serving's PDB keeps two replicas, so at least two."
  type        = number
  default     = 3

  validation {
    condition     = var.general_min_count >= 2
    error_message = "general_min_count must be at least 2 (the serving PDB's minAvailable)."
  }
}

variable "general_max_count" {
  description = "Most nodes of the on-demand user pool."
  type        = number
  default     = 10

  validation {
    condition     = var.general_max_count >= var.general_min_count
    error_message = "general_max_count must be at least general_min_count."
  }
}

variable "spot_vm_size" {
  description = "VM size of the Spot user pool for interruptible batch work. It needs a temp disk of at least 128 GiB."
  type        = string
  default     = "Standard_D8ds_v5"
}

variable "spot_max_count" {
  description = "Most nodes of the Spot user pool (it scales from zero)."
  type        = number
  default     = 10

  validation {
    condition     = var.spot_max_count >= 1
    error_message = "spot_max_count must be at least 1."
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
  description = "Kubernetes service account of the model-serving workload, federated to the serving managed identity."
  type        = string
  default     = "model-serving"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.serving_service_account))
    error_message = "serving_service_account must be a Kubernetes service account name (a DNS label)."
  }
}

variable "storage_account_name" {
  description = "The model storage account (globally unique, 3 to 24 lowercase letters and digits). Null: <prefix without hyphens>models<location>, cut to 24."
  type        = string
  default     = null

  validation {
    condition     = var.storage_account_name == null || can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name must be 3 to 24 lowercase letters and digits."
  }
}

variable "storage_replication_type" {
  description = "Redundancy of the storage account inside the region. Copies in other regions are the replication DAG's."
  type        = string
  default     = "ZRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.storage_replication_type)
    error_message = "storage_replication_type must be LRS, ZRS, GRS, RAGRS, GZRS or RAGZRS."
  }
}

variable "container_name" {
  description = "The private blob container holding the models: the catalogue's bucket for this region."
  type        = string
  default     = "models"

  validation {
    # The catalogue's Azure container pattern.
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.container_name)) && !strcontains(var.container_name, "--")
    error_message = "container_name must be 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit."
  }
}

variable "storage_allowed_ip_ranges" {
  description = "Public IPv4 addresses or CIDR blocks (/30 or wider) allowed through the storage firewall, e.g. the replication workers' egress. The cluster's subnet is always allowed."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for range in var.storage_allowed_ip_ranges : can(regex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}(/([0-9]|[12][0-9]|30))?$", range))])
    error_message = "Each storage_allowed_ip_ranges entry must be an IPv4 address or a CIDR block of /30 or wider (the storage firewall refuses /31 and /32)."
  }
}

variable "blob_soft_delete_days" {
  description = "Days deleted blobs, blob versions and containers can be restored."
  type        = number
  default     = 14

  validation {
    condition     = var.blob_soft_delete_days >= 1 && var.blob_soft_delete_days <= 365
    error_message = "blob_soft_delete_days must be between 1 and 365."
  }
}

variable "replicator_principal_ids" {
  description = "Entra ID principals (object ids) that replicate models into the container, by a name of your choosing: Storage Blob Data Contributor on the container."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for id in values(var.replicator_principal_ids) : can(regex("^[0-9a-fA-F-]{36}$", id))])
    error_message = "Each replicator_principal_ids value must be an Entra ID object id (a GUID)."
  }
}

variable "log_retention_days" {
  description = "Days the Log Analytics workspace keeps container insights and storage logs."
  type        = number
  default     = 30

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be between 30 and 730."
  }
}
