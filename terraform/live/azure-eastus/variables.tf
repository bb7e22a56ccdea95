variable "subscription_id" {
  description = "The Azure subscription the region is created in."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-fA-F-]{36}$", var.subscription_id))
    error_message = "subscription_id must be a subscription GUID."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "mlp"
}

variable "storage_account_name" {
  description = "The model storage account (globally unique); null derives it from the prefix and location."
  type        = string
  default     = null
}

variable "container_name" {
  description = "The model container: the catalogue's bucket for azure-eastus."
  type        = string
  default     = "models"
}

variable "api_server_authorized_ip_ranges" {
  description = "Public CIDR blocks allowed to the AKS API server."
  type        = list(string)
}

variable "admin_group_object_ids" {
  description = "Entra ID groups given cluster-admin."
  type        = list(string)
  default     = []
}

variable "storage_allowed_ip_ranges" {
  description = "Public addresses or CIDR blocks allowed through the storage firewall (e.g. the replication workers' egress)."
  type        = list(string)
  default     = []
}

variable "replicator_principal_ids" {
  description = "Entra ID principals that replicate models into the container, by a name of your choosing."
  type        = map(string)
  default     = {}
}

variable "storage_connection_id" {
  description = "The Airflow wasb connection that reaches this region's container (the catalogue's connections.storage)."
  type        = string
  default     = "azure_eastus"
}

variable "kubernetes_connection_id" {
  description = "The Airflow cncf-kubernetes connection that reaches this region's cluster; null for none."
  type        = string
  default     = "k8s_azure_eastus"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
