output "region" {
  description = "The AWS region (the catalogue's cloud_region)."
  value       = var.region
}

output "availability_zones" {
  description = "The three zones the subnets, NAT gateways and node groups spread over."
  value       = local.availability_zones
}

output "vpc_id" {
  description = "The region's VPC."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public /20 subnets by zone: internet-facing load balancers and the NAT gateways."
  value       = { for zone, subnet in aws_subnet.public : zone => subnet.id }
}

output "private_subnet_ids" {
  description = "Private /20 subnets by zone: nodes, pods and internal load balancers."
  value       = { for zone, subnet in aws_subnet.private : zone => subnet.id }
}

output "nat_gateway_ids" {
  description = "NAT gateways by zone, one per zone."
  value       = { for zone, gateway in aws_nat_gateway.this : zone => gateway.id }
}

output "nat_public_ips" {
  description = "The NAT gateways' public addresses: the egress of every pod, so the address the other clouds' firewalls must allow for replication and cluster warm-up (storage_allowed_ip_ranges, authorized networks)."
  value       = [for zone in local.availability_zones : aws_eip.nat[zone].public_ip]
}

output "cluster_name" {
  description = "The EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "The cluster's API server (private unless endpoint_public_access): the host of the region's kubernetes connection."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 PEM of the cluster CA, for the region's kubernetes connection."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_oidc_issuer_url" {
  description = "The cluster's service account token issuer, trusted by the IRSA roles."
  value       = aws_eks_cluster.this.identity[0].oidc[0].issuer
}

output "oidc_provider_arn" {
  description = "The IAM OIDC provider of the cluster: the Federated principal of IRSA trust policies."
  value       = aws_iam_openid_connect_provider.cluster.arn
}

output "update_kubeconfig_command" {
  description = "The aws command that writes a kubeconfig entry for this cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${aws_eks_cluster.this.name}"
}

output "node_role_arn" {
  description = "IAM role of the nodes of both node groups."
  value       = aws_iam_role.node.arn
}

output "bucket_name" {
  description = "The model bucket: the catalogue's bucket for this region."
  value       = aws_s3_bucket.models.bucket
}

output "bucket_arn" {
  description = "ARN of the model bucket."
  value       = aws_s3_bucket.models.arn
}

output "models_kms_key_arn" {
  description = "KMS key the model bucket is encrypted with (a peer_model_buckets entry of the other AWS regions)."
  value       = aws_kms_key.models.arn
}

output "access_log_bucket_name" {
  description = "The bucket holding the model bucket's server access logs."
  value       = module.access_logs.bucket
}

output "platform_role_arns" {
  description = "IRSA role ARNs by job (model-serving, replicator, cost, and failover when hosted_zone_id is set): the eks.amazonaws.com/role-arn annotation of each service account."
  value       = { for role, definition in aws_iam_role.platform : role => definition.arn }
}

output "platform_service_accounts" {
  description = "The Kubernetes service accounts (NAMESPACE/NAME) each IRSA role trusts, by job."
  value       = local.platform_role_service_accounts
}
