output "catalogue_region" {
  description = "This region's entry of the region catalogue, as far as Terraform knows it (read by python -m include.terraform_catalogue)."
  value = {
    name         = "aws-${local.region}"
    provider     = "aws"
    cloud_region = module.aws.region
    bucket       = module.aws.bucket_name
    connections = {
      storage    = var.storage_connection_id
      kubernetes = var.kubernetes_connection_id
    }
  }
}

output "cluster_name" {
  description = "The EKS cluster."
  value       = module.aws.cluster_name
}

output "cluster_endpoint" {
  description = "The EKS API server: the host of the region's kubernetes connection."
  value       = module.aws.cluster_endpoint
}

output "update_kubeconfig_command" {
  description = "Writes a kubeconfig entry for the cluster."
  value       = module.aws.update_kubeconfig_command
}

output "vpc_id" {
  description = "The region's VPC (the AWS Load Balancer Controller's vpcId)."
  value       = module.aws.vpc_id
}

output "nat_public_ips" {
  description = "Egress addresses of the region's pods: allow them in the GCP and Azure regions' firewalls (storage, cluster API)."
  value       = module.aws.nat_public_ips
}

output "bucket_name" {
  description = "The model bucket."
  value       = module.aws.bucket_name
}

output "models_kms_key_arn" {
  description = "The model bucket's KMS key (a peer_model_buckets entry of other AWS regions)."
  value       = module.aws.models_kms_key_arn
}

output "platform_role_arns" {
  description = "IRSA role ARNs by job: annotate each service account with its role (eks.amazonaws.com/role-arn)."
  value       = module.aws.platform_role_arns
}

output "platform_service_accounts" {
  description = "The service accounts (NAMESPACE/NAME) each IRSA role trusts, by job."
  value       = module.aws.platform_service_accounts
}
