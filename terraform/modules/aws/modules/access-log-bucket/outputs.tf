output "bucket" {
  description = "The access-log bucket's name: the target_bucket of the logged bucket's aws_s3_bucket_logging."
  value       = aws_s3_bucket.this.bucket
}

output "target_prefix" {
  description = "The prefix the logged bucket's logs must be delivered under (the only one the policy allows)."
  value       = local.target_prefix
}
