locals {
  location = "eastus" # this root is one catalogue region
}

module "azure" {
  source = "../../modules/azure"

  location             = local.location
  name_prefix          = var.name_prefix
  storage_account_name = var.storage_account_name
  container_name       = var.container_name

  api_server_authorized_ip_ranges = var.api_server_authorized_ip_ranges
  admin_group_object_ids          = var.admin_group_object_ids
  storage_allowed_ip_ranges       = var.storage_allowed_ip_ranges
  replicator_principal_ids        = var.replicator_principal_ids

  tags = var.tags
}
