# One serving region of the platform on Azure: an AKS cluster on Azure CNI with workload identity, the
# managed identity the model-serving pods act as, and the storage account whose private container holds the
# region's models. Call it once per region.

locals {
  name = "${var.name_prefix}-${var.location}"

  # Storage account names are global, 3 to 24 lowercase letters and digits.
  storage_account_name = coalesce(var.storage_account_name, substr("${replace(var.name_prefix, "-", "")}models${var.location}", 0, 24))

  # The subject of the serving pods' projected service account token.
  serving_token_subject = "system:serviceaccount:${var.serving_namespace}:${var.serving_service_account}"

  tags = merge(var.tags, {
    platform   = "mlp"
    managed-by = "terraform"
  })
}

resource "azurerm_resource_group" "this" {
  name     = local.name
  location = var.location
  tags     = local.tags
}

# Container insights of the cluster and the model container's access logs.
resource "azurerm_log_analytics_workspace" "this" {
  name                = local.name
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}
