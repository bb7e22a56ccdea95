# The platform's IRSA roles: each trusted by named service accounts only, each allowed only its job.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

variables {
  region                       = "us-west-2"
  name_prefix                  = "mlp"
  cluster_admin_principal_arns = ["arn:aws:iam::123456789012:role/platform-admin"]
}

run "no_failover_role_without_a_zone" {
  command = plan

  assert {
    condition     = toset(keys(aws_iam_role.platform)) == toset(["model-serving", "replicator", "cost"])
    error_message = "Without hosted_zone_id there are three roles and no failover role."
  }

  assert {
    # The role k8s/overlays/aws-us-west-2 annotates the model-serving service account with.
    condition     = aws_iam_role.platform["model-serving"].name == "mlp-model-serving-us-west-2"
    error_message = "The serving role must be named as the Kubernetes overlay expects."
  }
}

run "irsa_trust_names_its_service_accounts" {
  command = plan

  assert {
    condition = alltrue([for role, definition in aws_iam_role.platform :
      length(jsondecode(definition.assume_role_policy).Statement) == 1
      && one(jsondecode(definition.assume_role_policy).Statement).Action == "sts:AssumeRoleWithWebIdentity"
      && one(jsondecode(definition.assume_role_policy).Statement).Principal.Federated == aws_iam_openid_connect_provider.cluster.arn
      && one(jsondecode(definition.assume_role_policy).Statement).Condition.StringEquals["oidc.eks.us-west-2.amazonaws.com/id/0123456789ABCDEF:aud"] == "sts.amazonaws.com"
    ])
    error_message = "Every role is assumable only with a token of this cluster's OIDC provider, for STS."
  }

  assert {
    condition = (
      one(jsondecode(aws_iam_role.platform["model-serving"].assume_role_policy).Statement).Condition.StringEquals["oidc.eks.us-west-2.amazonaws.com/id/0123456789ABCDEF:sub"] == ["system:serviceaccount:mlp-serving:model-serving"]
      && one(jsondecode(aws_iam_role.platform["replicator"].assume_role_policy).Statement).Condition.StringEquals["oidc.eks.us-west-2.amazonaws.com/id/0123456789ABCDEF:sub"] == ["system:serviceaccount:airflow:airflow-worker"]
      && one(jsondecode(aws_iam_role.platform["cost"].assume_role_policy).Statement).Condition.StringEquals["oidc.eks.us-west-2.amazonaws.com/id/0123456789ABCDEF:sub"] == ["system:serviceaccount:airflow:airflow-worker"]
    )
    error_message = "Each role trusts exactly its service accounts: serving pods, and by default the Airflow workers."
  }
}

run "model_serving_reads_its_bucket_only" {
  command = plan

  assert {
    condition     = toset(flatten([for statement in jsondecode(aws_iam_role_policy.platform["model-serving"].policy).Statement : statement.Action])) == toset(["s3:ListBucket", "s3:GetObject", "kms:Decrypt"])
    error_message = "Model serving may only list and read models."
  }

  assert {
    condition = toset(flatten([for statement in jsondecode(aws_iam_role_policy.platform["model-serving"].policy).Statement : statement.Resource])) == toset([
      "arn:aws:s3:::mlp-models-us-west-2", "arn:aws:s3:::mlp-models-us-west-2/*", aws_kms_key.models.arn,
    ])
    error_message = "Model serving may only touch its region's bucket and key."
  }
}

run "replicator_reads_and_writes_model_buckets_only" {
  command = plan

  variables {
    peer_model_buckets = [{ name = "mlp-models-us-east-1", kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/11111111-1111-1111-1111-111111111111" }]
  }

  assert {
    condition = toset(flatten([for statement in jsondecode(aws_iam_role_policy.platform["replicator"].policy).Statement : statement.Action])) == toset([
      "s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "kms:Decrypt", "kms:GenerateDataKey",
    ])
    error_message = "The replicator may only list, read, write and delete model objects, and use their keys."
  }

  assert {
    condition = toset(flatten([for statement in jsondecode(aws_iam_role_policy.platform["replicator"].policy).Statement : statement.Resource])) == toset([
      "arn:aws:s3:::mlp-models-us-west-2", "arn:aws:s3:::mlp-models-us-east-1",
      "arn:aws:s3:::mlp-models-us-west-2/*", "arn:aws:s3:::mlp-models-us-east-1/*",
      aws_kms_key.models.arn, "arn:aws:kms:us-east-1:123456789012:key/11111111-1111-1111-1111-111111111111",
    ])
    error_message = "The replicator may only touch the model buckets and their keys."
  }

  assert {
    condition = alltrue([for statement in jsondecode(aws_iam_role_policy.platform["replicator"].policy).Statement :
      try(statement.Condition.StringLike["kms:ViaService"], null) == "s3.*.amazonaws.com"
      if anytrue([for action in flatten([statement.Action]) : startswith(action, "kms:")])
    ])
    error_message = "The model keys may be used only through S3."
  }
}

run "cost_reads_cost_explorer_only" {
  command = plan

  assert {
    condition     = jsondecode(aws_iam_role_policy.platform["cost"].policy).Statement == [{ Sid = "ReadCostAndUsage", Effect = "Allow", Action = "ce:GetCostAndUsage", Resource = "*" }]
    error_message = "The cost role may only call ce:GetCostAndUsage."
  }
}

run "failover_changes_only_its_zones_traffic_records" {
  command = plan

  variables {
    hosted_zone_id       = "Z0123456789ABCDEFGHIJ"
    traffic_record_names = ["api.models.example.com", "latency.api.models.example.com", "failover.api.models.example.com"]
    service_accounts     = { failover = ["airflow/mlp-failover", "airflow/airflow-triggerer"] }
  }

  assert {
    condition     = toset(one(jsondecode(aws_iam_role.platform["failover"].assume_role_policy).Statement).Condition.StringEquals["oidc.eks.us-west-2.amazonaws.com/id/0123456789ABCDEF:sub"]) == toset(["system:serviceaccount:airflow:mlp-failover", "system:serviceaccount:airflow:airflow-triggerer"])
    error_message = "The failover role trusts the service accounts it is given, and no other."
  }

  assert {
    condition     = [for statement in jsondecode(aws_iam_role_policy.platform["failover"].policy).Statement : statement.Resource if statement.Action == "route53:ChangeResourceRecordSets"] == ["arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"]
    error_message = "route53:ChangeResourceRecordSets must be allowed on the hosted zone's ARN only."
  }

  assert {
    condition = alltrue([for statement in jsondecode(aws_iam_role_policy.platform["failover"].policy).Statement :
      toset(statement.Condition["ForAllValues:StringEquals"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"]) == toset(["api.models.example.com", "latency.api.models.example.com", "failover.api.models.example.com"])
      && statement.Condition["ForAllValues:StringEquals"]["route53:ChangeResourceRecordSetsRecordTypes"] == ["CNAME"]
      if statement.Action == "route53:ChangeResourceRecordSets"
    ])
    error_message = "Record changes must be limited to CNAMEs under the three traffic names."
  }

  assert {
    condition = toset(flatten([for statement in jsondecode(aws_iam_role_policy.platform["failover"].policy).Statement : statement.Action])) == toset([
      "route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:ListHostedZonesByName", "route53:ListHealthChecks",
    ])
    error_message = "The failover role may only read and change records, and find the zone and health checks."
  }

  assert {
    # The Route 53 and Cost Explorer actions that have no resource-level permissions are the only ones on "*".
    condition = alltrue(flatten([for role, policy in aws_iam_role_policy.platform : [
      for statement in jsondecode(policy.policy).Statement : [
        for action in flatten([statement.Action]) :
        contains(["route53:ListHostedZonesByName", "route53:ListHealthChecks", "ce:GetCostAndUsage"], action)
      ] if contains(flatten([statement.Resource]), "*")
    ]]))
    error_message = "Only actions without resource-level permissions may be allowed on \"*\"."
  }

  assert {
    condition     = alltrue([for role, policy in aws_iam_role_policy.platform : alltrue([for statement in jsondecode(policy.policy).Statement : alltrue([for action in flatten([statement.Action]) : !strcontains(action, "*")])])])
    error_message = "No platform policy may use a wildcard action."
  }
}
