# Every DNS query Route 53 answers for the zone, in CloudWatch Logs (us-east-1, as Route 53 requires).

resource "aws_kms_key" "query_logs" {
  description         = "CloudWatch Logs encryption of ${var.zone_name}'s DNS query logs"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # AWS's default key policy statement (see dnssec.tf).
        Sid       = "AccountAdministersThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsThisAccountsGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${data.aws_region.current.name}.amazonaws.com" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]
        Resource  = "*" # in a key policy: this key
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${data.aws_region.current.name}:${local.account_id}:log-group:*" }
        }
      },
    ]
  })
  tags = local.tags
}

resource "aws_cloudwatch_log_group" "query_logs" {
  name              = "/aws/route53/${var.zone_name}"
  retention_in_days = var.query_log_retention_days
  kms_key_id        = aws_kms_key.query_logs.arn
  tags              = local.tags

  lifecycle {
    precondition {
      condition     = data.aws_region.current.name == "us-east-1"
      error_message = "Route 53 query logs must go to a log group in us-east-1; configure this module's aws provider for us-east-1."
    }
  }
}

# Lets Route 53 write this zone's query logs, and nothing else, into the group.
resource "aws_cloudwatch_log_resource_policy" "query_logs" {
  policy_name = "route53-query-logs-${replace(var.zone_name, ".", "-")}"
  policy_document = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "route53.amazonaws.com" }
      Action    = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource  = "${aws_cloudwatch_log_group.query_logs.arn}:*"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnLike      = { "aws:SourceArn" = aws_route53_zone.this.arn }
      }
    }]
  })
}

resource "aws_route53_query_log" "this" {
  zone_id                  = aws_route53_zone.this.zone_id
  cloudwatch_log_group_arn = aws_cloudwatch_log_group.query_logs.arn

  depends_on = [aws_cloudwatch_log_resource_policy.query_logs]
}
