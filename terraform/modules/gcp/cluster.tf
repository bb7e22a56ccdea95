# A regional (three-zone) GKE Standard cluster: private nodes, a control plane reachable only from the VPC and
# the authorized networks, Workload Identity, GKE Dataplane V2 and shielded nodes on a release channel.
resource "google_container_cluster" "this" {
  # checkov:skip=CKV_GCP_65:Google Groups for RBAC needs a Google Workspace domain; it is on when rbac_security_group is set.
  project  = var.project_id
  name     = local.name
  location = var.region

  network         = google_compute_network.vpc.id
  subnetwork      = google_compute_subnetwork.nodes.id
  networking_mode = "VPC_NATIVE"

  ip_allocation_policy {
    cluster_secondary_range_name  = local.pods_range_name
    services_secondary_range_name = local.services_range_name
  }

  # Node pools are separate resources below, so changing one never replaces the cluster.
  remove_default_node_pool = true
  initial_node_count       = 1

  deletion_protection = var.deletion_protection

  release_channel {
    channel = var.release_channel
  }

  # Dataplane V2 (eBPF, Cilium) enforces NetworkPolicy itself: the default-deny policies in k8s/base hold
  # without the Calico add-on, and the GKE metadata-server egress of the overlay is the one it needs.
  datapath_provider = "ADVANCED_DATAPATH"

  # The Calico network-policy add-on stays off: it and Dataplane V2 are exclusive.
  network_policy {
    enabled = false
  }

  private_cluster_config {
    enable_private_nodes = true
    # The public endpoint stays, closed to everything but control_plane_authorized_networks, so CI,
    # operators and the failover DAG's kubernetes connection reach it from outside the VPC without a bastion.
    enable_private_endpoint = false
    master_ipv4_cidr_block  = var.control_plane_cidr
  }

  master_authorized_networks_config {
    gcp_public_cidrs_access_enabled = false

    dynamic "cidr_blocks" {
      for_each = var.control_plane_authorized_networks
      content {
        cidr_block   = cidr_blocks.value.cidr_block
        display_name = cidr_blocks.value.display_name
      }
    }
  }

  workload_identity_config {
    workload_pool = local.workload_pool
  }

  enable_shielded_nodes       = true
  enable_legacy_abac          = false
  enable_intranode_visibility = true

  dynamic "authenticator_groups_config" {
    for_each = var.rbac_security_group == null ? [] : [var.rbac_security_group]
    content {
      security_group = authenticator_groups_config.value
    }
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  # Enforces the project's Binary Authorization policy (allow-all until one is written).
  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  security_posture_config {
    mode = "BASIC"
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
    managed_prometheus {
      enabled = true
    }
  }

  # GKE cost allocation: namespace and label breakdowns in the billing export the cost DAG reads.
  cost_management_config {
    enabled = true
  }

  addons_config {
    # The standalone NEG of k8s/overlays/gcp-europe-west1 needs the load-balancing controller.
    http_load_balancing {
      disabled = false
    }
    horizontal_pod_autoscaling {
      disabled = false
    }
  }

  resource_labels = local.labels

  # The default pool lives only while the cluster is created; it still runs as the least-privilege node
  # account (an organisation policy may forbid the default compute account) with shielded nodes.
  node_config {
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  lifecycle {
    # Describes the removed default pool only; a change here would otherwise replace the cluster.
    ignore_changes = [node_config]
  }

  depends_on = [google_project_iam_member.nodes]
}

# On-demand capacity for system pods and model serving (the HPA's 3 to 20 replicas, PDB minAvailable 2).
resource "google_container_node_pool" "general" {
  project  = var.project_id
  name     = "general"
  cluster  = google_container_cluster.this.id
  location = var.region

  initial_node_count = var.general_min_nodes_per_zone

  autoscaling {
    min_node_count = var.general_min_nodes_per_zone
    max_node_count = var.general_max_nodes_per_zone
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  # Surge one node at a time and never take one away first: serving keeps its PDB during upgrades.
  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type = var.general_machine_type
    image_type   = "COS_CONTAINERD"
    disk_type    = "pd-balanced"
    disk_size_gb = 100

    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }

    resource_labels = local.labels
  }

  lifecycle {
    ignore_changes = [initial_node_count]
  }
}

# Spot capacity for interruptible batch work; it scales from zero. GKE labels Spot nodes
# cloud.google.com/gke-spot=true; the taint keeps every pod off them that does not tolerate it, serving
# included, so only work that survives a 30-second preemption lands here.
resource "google_container_node_pool" "spot" {
  project  = var.project_id
  name     = "spot"
  cluster  = google_container_cluster.this.id
  location = var.region

  initial_node_count = 0

  autoscaling {
    total_min_node_count = 0
    total_max_node_count = var.spot_max_nodes
    # Take Spot capacity in whichever zone has it.
    location_policy = "ANY"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    spot         = true
    machine_type = var.spot_machine_type
    image_type   = "COS_CONTAINERD"
    disk_type    = "pd-balanced"
    disk_size_gb = 100

    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }

    taint {
      key    = "cloud.google.com/gke-spot"
      value  = "true"
      effect = "NO_SCHEDULE"
    }

    resource_labels = local.labels
  }

  lifecycle {
    ignore_changes = [initial_node_count]
  }
}
