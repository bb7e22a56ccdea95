# The platform's gcp-europe-west1 region: GKE, model bucket and registry (terraform/modules/gcp). Its state
# is stored with the others in the S3 bucket, so applying it needs AWS credentials as well as Google ones.
terraform {
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }

  backend "s3" {
    key            = "mlp/gcp-europe-west1/terraform.tfstate"
    dynamodb_table = "mlp-terraform-locks" # created by terraform/live/bootstrap
    encrypt        = true
    # bucket, region and kms_key_id: terraform init -backend-config=../backend.hcl
  }
}

provider "google" {
  project = var.project_id
  region  = local.region
}
