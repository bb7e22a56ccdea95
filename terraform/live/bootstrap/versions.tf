# The state bucket and lock table every other root stores its state in. This root itself keeps its state in
# a local file (it cannot be stored in a bucket it creates): keep terraform.tfstate safe, or migrate it into
# the new bucket afterwards as docs/terraform-aws.md describes.
terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { platform = "mlp", managed-by = "terraform", root = "bootstrap" })
  }
}
