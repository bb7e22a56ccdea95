# The global DNS of the platform: the hosted zone, the regions' health checks and the traffic records the
# failover DAGs steer. Route 53 is global; the provider is in us-east-1 because the DNSSEC key and the query
# log group must be. Apply it first: the AWS region roots scope their failover role to its zone.
terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  backend "s3" {
    key            = "mlp/dns/terraform.tfstate"
    dynamodb_table = "mlp-terraform-locks" # created by terraform/live/bootstrap
    encrypt        = true
    # bucket, region and kms_key_id: terraform init -backend-config=../backend.hcl
  }
}

provider "aws" {
  region = "us-east-1"

  default_tags {
    tags = merge(var.tags, { platform = "mlp", managed-by = "terraform", root = "dns" })
  }
}
