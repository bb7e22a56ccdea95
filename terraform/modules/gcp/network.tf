# A custom-mode VPC with one regional subnet: nodes on the primary range, pods and Services on the two
# secondary ranges GKE's VPC-native mode (alias IPs) takes them from.
resource "google_compute_network" "vpc" {
  project                 = var.project_id
  name                    = local.name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "nodes" {
  project       = var.project_id
  name          = "${local.name}-nodes"
  region        = var.region
  network       = google_compute_network.vpc.id
  ip_cidr_range = var.subnet_cidr

  # Private nodes have no external address: Google APIs (GCS, Artifact Registry) are reached privately.
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = local.pods_range_name
    ip_cidr_range = var.pods_cidr
  }

  secondary_ip_range {
    range_name    = local.services_range_name
    ip_cidr_range = var.services_cidr
  }

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Outbound internet for the private nodes and pods (images outside Artifact Registry, the other clouds'
# object stores during replication checks), with no inbound path. Cloud NAT is regional: one per region.
resource "google_compute_router" "nat" {
  project = var.project_id
  name    = "${local.name}-nat"
  region  = var.region
  network = google_compute_network.vpc.id
}

resource "google_compute_router_nat" "nat" {
  project                            = var.project_id
  name                               = "${local.name}-nat"
  router                             = google_compute_router.nat.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.nodes.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# Google's load-balancer proxies and health checkers reach the serving pods directly through the standalone
# NEG (container-native load balancing), which GKE opens no firewall for. Everything else inbound stays
# denied by the VPC's implied rule.
resource "google_compute_firewall" "load_balancer_to_serving" {
  project   = var.project_id
  name      = "${local.name}-lb-to-serving"
  network   = google_compute_network.vpc.id
  direction = "INGRESS"
  priority  = 1000

  source_ranges           = ["130.211.0.0/22", "35.191.0.0/16"]
  target_service_accounts = [google_service_account.nodes.email]

  allow {
    protocol = "tcp"
    ports    = [tostring(var.serving_container_port)]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
