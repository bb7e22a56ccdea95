# EKS: private control plane, every log type, encrypted secrets, an on-demand and a Spot managed node group.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

variables {
  region                       = "us-west-2"
  name_prefix                  = "mlp"
  cluster_admin_principal_arns = ["arn:aws:iam::123456789012:role/platform-admin"]
}

run "private_control_plane_with_logging_and_secrets_encryption" {
  command = plan

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_private_access && !aws_eks_cluster.this.vpc_config[0].endpoint_public_access
    error_message = "By default the API endpoint must be private only."
  }

  assert {
    condition     = toset(aws_eks_cluster.this.vpc_config[0].subnet_ids) == toset([for subnet in aws_subnet.private : subnet.id])
    error_message = "The control plane's network interfaces belong in the private subnets."
  }

  assert {
    condition     = aws_eks_cluster.this.enabled_cluster_log_types == toset(["api", "audit", "authenticator", "controllerManager", "scheduler"])
    error_message = "Every control-plane log type must be on."
  }

  assert {
    condition     = aws_eks_cluster.this.encryption_config[0].resources == toset(["secrets"]) && aws_eks_cluster.this.encryption_config[0].provider[0].key_arn == aws_kms_key.cluster.arn
    error_message = "Kubernetes secrets must be envelope-encrypted with the cluster key."
  }

  assert {
    condition     = aws_cloudwatch_log_group.cluster.name == "/aws/eks/mlp-us-west-2/cluster" && aws_cloudwatch_log_group.cluster.kms_key_id == aws_kms_key.logs.arn
    error_message = "The control-plane log group must be created encrypted, under the name EKS writes to."
  }

  assert {
    condition     = aws_kms_key.cluster.enable_key_rotation && aws_kms_key.models.enable_key_rotation && aws_kms_key.logs.enable_key_rotation
    error_message = "Every key must rotate."
  }

  assert {
    condition     = aws_eks_cluster.this.access_config[0].authentication_mode == "API" && !aws_eks_cluster.this.access_config[0].bootstrap_cluster_creator_admin_permissions
    error_message = "Access goes through access entries only, with no implicit admin for the creator."
  }

  assert {
    condition     = keys(aws_eks_access_policy_association.admin) == ["arn:aws:iam::123456789012:role/platform-admin"] && aws_eks_access_policy_association.admin["arn:aws:iam::123456789012:role/platform-admin"].policy_arn == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy" && aws_eks_access_policy_association.admin["arn:aws:iam::123456789012:role/platform-admin"].access_scope[0].type == "cluster"
    error_message = "The named admins get cluster-wide admin through access entries."
  }

  assert {
    condition     = aws_iam_openid_connect_provider.cluster.url == aws_eks_cluster.this.identity[0].oidc[0].issuer && aws_iam_openid_connect_provider.cluster.client_id_list == toset(["sts.amazonaws.com"])
    error_message = "The IAM OIDC provider must trust the cluster's issuer for STS."
  }
}

run "on_demand_and_spot_node_groups" {
  command = plan

  assert {
    condition     = aws_eks_node_group.this["on-demand"].capacity_type == "ON_DEMAND" && aws_eks_node_group.this["spot"].capacity_type == "SPOT"
    error_message = "Expected one ON_DEMAND and one SPOT managed node group."
  }

  assert {
    condition     = length(aws_eks_node_group.this["spot"].instance_types) >= 2
    error_message = "The Spot group needs several instance types to find capacity."
  }

  assert {
    condition     = aws_eks_node_group.this["spot"].scaling_config[0].min_size == 0 && aws_eks_node_group.this["on-demand"].scaling_config[0].min_size == 3
    error_message = "Spot scales from zero; on-demand keeps three nodes, one per zone."
  }

  assert {
    condition = (
      length(aws_eks_node_group.this["spot"].taint) == 1
      && one(aws_eks_node_group.this["spot"].taint).effect == "NO_SCHEDULE"
      && one(aws_eks_node_group.this["spot"].taint).key == "mlp.io/capacity"
      && length(aws_eks_node_group.this["on-demand"].taint) == 0
    )
    error_message = "Only Spot nodes are tainted, so serving never lands on them unless it tolerates it."
  }

  assert {
    condition     = aws_eks_node_group.this["spot"].labels["mlp.io/capacity"] == "spot" && aws_eks_node_group.this["on-demand"].labels["mlp.io/capacity"] == "on-demand"
    error_message = "Nodes are labelled with their capacity type."
  }

  assert {
    condition     = alltrue([for group in aws_eks_node_group.this : toset(group.subnet_ids) == toset([for subnet in aws_subnet.private : subnet.id])])
    error_message = "Both node groups span the three private subnets."
  }

  assert {
    condition = alltrue([for template in aws_launch_template.node :
      template.metadata_options[0].http_tokens == "required"
      && template.metadata_options[0].http_put_response_hop_limit == 1
      && template.block_device_mappings[0].ebs[0].encrypted == "true"
    ])
    error_message = "Nodes require IMDSv2 with one hop and have encrypted root volumes."
  }
}

run "public_endpoint_only_for_named_networks" {
  command = plan

  variables {
    endpoint_public_access = true
    public_access_cidrs    = ["203.0.113.0/24"]
  }

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access && aws_eks_cluster.this.vpc_config[0].public_access_cidrs == toset(["203.0.113.0/24"])
    error_message = "A public endpoint must be open to the named blocks only."
  }
}
