variable "name_prefix" {
  description = "Prefix of every resource name; the serving role is <prefix>-model-serving-us-west-2."
  type        = string
  default     = "mlp"
}

variable "bucket_name" {
  description = "The model bucket (the catalogue's bucket for aws-us-west-2); null means <prefix>-models-us-west-2."
  type        = string
  default     = null
}

variable "vpc_cidr" {
  description = "The region's VPC /16; give each region its own if they may ever be peered."
  type        = string
  default     = "10.0.0.0/16"
}

variable "endpoint_public_access" {
  description = "Open the EKS API to public_access_cidrs as well as to the VPC."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "Public CIDR blocks allowed to the EKS API when endpoint_public_access is true."
  type        = list(string)
  default     = []
}

variable "cluster_admin_principal_arns" {
  description = "IAM roles or users given cluster-admin through EKS access entries (at least one)."
  type        = list(string)
}

variable "hosted_zone_id" {
  description = "The platform's hosted zone (terraform -chdir=../dns output -raw zone_id): the failover role may change its traffic records. Null: no failover role here."
  type        = string
  default     = null
}

variable "traffic_record_names" {
  description = "The traffic record names (terraform -chdir=../dns output -json traffic_record_names)."
  type        = list(string)
  default     = []
}

variable "peer_model_buckets" {
  description = "Model buckets of the platform's other AWS regions the replicator also reads and writes, with their KMS keys."
  type = list(object({
    name        = string
    kms_key_arn = string
  }))
  default = []
}

variable "service_accounts" {
  description = "Kubernetes service accounts (NAMESPACE/NAME) each IRSA role trusts; see the aws module."
  type = object({
    model_serving = optional(list(string), ["mlp-serving/model-serving"])
    replicator    = optional(list(string), ["airflow/airflow-worker"])
    failover      = optional(list(string), ["airflow/airflow-worker"])
    cost          = optional(list(string), ["airflow/airflow-worker"])
  })
  default = {}
}

variable "storage_connection_id" {
  description = "The Airflow aws connection that reaches this region's bucket (the catalogue's connections.storage)."
  type        = string
  default     = "aws_us_west_2"
}

variable "kubernetes_connection_id" {
  description = "The Airflow cncf-kubernetes connection that reaches this region's cluster (the catalogue's connections.kubernetes); null for none."
  type        = string
  default     = "k8s_aws_us_west_2"
}

variable "tags" {
  description = "Tags added to every resource, besides platform, managed-by, root and region."
  type        = map(string)
  default     = {}
}
