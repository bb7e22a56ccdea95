# The platform's aws-us-west-2 region (the primary): network, EKS, model bucket and IRSA roles.
terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  backend "s3" {
    key            = "mlp/aws-us-west-2/terraform.tfstate"
    dynamodb_table = "mlp-terraform-locks" # created by terraform/live/bootstrap
    encrypt        = true
    # bucket, region and kms_key_id: terraform init -backend-config=../backend.hcl
  }
}

provider "aws" {
  region = local.region

  default_tags {
    tags = merge(var.tags, { platform = "mlp", managed-by = "terraform", root = "aws-us-west-2" })
  }
}
