# The model storage account: Entra ID only (no account keys, so no SAS either), TLS 1.2, no anonymous
# access, reachable from the cluster's subnet and the listed addresses only. Blob versions and soft delete
# make an overwritten or deleted model recoverable.
resource "azurerm_storage_account" "models" {
  # checkov:skip=CKV_AZURE_59:The replication DAG writes from other clouds over the public endpoint; the firewall denies all but the node subnet and storage_allowed_ip_ranges, and only Entra ID may authenticate.
  # checkov:skip=CKV2_AZURE_33:No private endpoint for the same reason: the writers are outside Azure; the storage firewall and Entra ID-only access guard the public one.
  # checkov:skip=CKV_AZURE_206:Copies in other regions are the platform's replication DAG's job; geo-redundant storage would add a second, unverified copy. ZRS by default.
  # checkov:skip=CKV2_AZURE_1:Microsoft-managed keys with infrastructure (double) encryption; a customer-managed key needs a Key Vault this module does not own.
  # checkov:skip=CKV_AZURE_33:The account serves blobs only, no queues; queue logging would also need the account key that is disabled here.
  name                     = local.storage_account_name
  location                 = azurerm_resource_group.this.location
  resource_group_name      = azurerm_resource_group.this.name
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.storage_replication_type
  access_tier              = "Hot"

  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  local_user_enabled                = false
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false

  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices"]
    ip_rules                   = var.storage_allowed_ip_ranges
    virtual_network_subnet_ids = [azurerm_subnet.nodes.id]
  }

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.blob_soft_delete_days
    }

    container_delete_retention_policy {
      days = var.blob_soft_delete_days
    }
  }

  tags = local.tags
}

# The catalogue's bucket for this region. Created through Resource Manager (storage_account_id), so it
# needs no account key.
resource "azurerm_storage_container" "models" {
  # checkov:skip=CKV2_AZURE_21:Blob reads, writes and deletes are logged by azurerm_monitor_diagnostic_setting.model_blob_access; the check knows only the legacy storage insights, which need the disabled account key.
  name                  = var.container_name
  storage_account_id    = azurerm_storage_account.models.id
  container_access_type = "private"
}

# Every read, write and delete of a blob, into the region's Log Analytics workspace.
resource "azurerm_monitor_diagnostic_setting" "model_blob_access" {
  name                       = "blob-access"
  target_resource_id         = "${azurerm_storage_account.models.id}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category = "StorageRead"
  }

  enabled_log {
    category = "StorageWrite"
  }

  enabled_log {
    category = "StorageDelete"
  }
}
