variable "project_id" {
  description = "The GCP project the region is created in."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "mlp"
}

variable "bucket_name" {
  description = "The model bucket (the catalogue's bucket for gcp-europe-west1); null means <prefix>-models-europe-west1."
  type        = string
  default     = null
}

variable "replicator_members" {
  description = "IAM members that replicate models into the bucket (e.g. the platform's workload identity federation principal)."
  type        = list(string)
  default     = []
}

variable "control_plane_authorized_networks" {
  description = "Public CIDR blocks allowed to the GKE control plane's public endpoint."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []
}

variable "storage_connection_id" {
  description = "The Airflow google_cloud_platform connection that reaches this region's bucket (the catalogue's connections.storage)."
  type        = string
  default     = "gcp_europe_west1"
}

variable "kubernetes_connection_id" {
  description = "The Airflow cncf-kubernetes connection that reaches this region's cluster; null for none."
  type        = string
  default     = "k8s_gcp_europe_west1"
}

variable "labels" {
  description = "Labels added to every resource that takes them."
  type        = map(string)
  default     = {}
}
