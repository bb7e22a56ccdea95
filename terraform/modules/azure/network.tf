# One VNet and one node subnet. Azure CNI Overlay gives pods addresses from pod_cidr, outside the VNet, so
# the subnet only has to hold nodes and internal load balancers.
resource "azurerm_virtual_network" "this" {
  name                = local.name
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  address_space       = [var.vnet_cidr]
  tags                = local.tags
}

resource "azurerm_subnet" "nodes" {
  name                 = "nodes"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [var.node_subnet_cidr]

  # Lets the storage firewall admit the nodes by subnet.
  service_endpoints = ["Microsoft.Storage"]
}

# Azure's default rules only: inbound from the VNet (the region's gateway to the internal load balancer) and
# from Azure Load Balancer probes, everything else inbound denied. AKS adds its own rules in the node
# resource group.
resource "azurerm_network_security_group" "nodes" {
  name                = "${local.name}-nodes"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_subnet_network_security_group_association" "nodes" {
  subnet_id                 = azurerm_subnet.nodes.id
  network_security_group_id = azurerm_network_security_group.nodes.id
}
