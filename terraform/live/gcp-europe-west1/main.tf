locals {
  region = "europe-west1" # this root is one catalogue region
}

module "gcp" {
  source = "../../modules/gcp"

  project_id  = var.project_id
  region      = local.region
  name_prefix = var.name_prefix
  bucket_name = var.bucket_name

  replicator_members                = var.replicator_members
  control_plane_authorized_networks = var.control_plane_authorized_networks

  labels = var.labels
}
