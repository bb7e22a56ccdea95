# The platform's azure-eastus region: AKS, model storage account and container (terraform/modules/azure). Its
# state is stored with the others in the S3 bucket, so applying it needs AWS credentials as well as Azure ones.
terraform {
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
  }

  backend "s3" {
    key            = "mlp/azure-eastus/terraform.tfstate"
    dynamodb_table = "mlp-terraform-locks" # created by terraform/live/bootstrap
    encrypt        = true
    # bucket, region and kms_key_id: terraform init -backend-config=../backend.hcl
  }
}

provider "azurerm" {
  subscription_id = var.subscription_id
  features {}
}
