output "state_bucket_name" {
  description = "The bucket every root's state is stored in."
  value       = aws_s3_bucket.state.bucket
}

output "lock_table_name" {
  description = "The DynamoDB table every root's backend locks its state with."
  value       = aws_dynamodb_table.locks.name
}

output "state_kms_key_arn" {
  description = "KMS key the state and the locks are encrypted with; whoever runs Terraform needs kms:Encrypt, kms:Decrypt and kms:GenerateDataKey on it."
  value       = aws_kms_key.state.arn
}

output "backend_config" {
  description = "The shared backend settings, in the format of terraform/live/backend.hcl.example: write it to terraform/live/backend.hcl."
  value       = <<-EOT
    bucket     = "${aws_s3_bucket.state.bucket}"
    region     = "${var.region}"
    kms_key_id = "${aws_kms_key.state.arn}"
  EOT
}
