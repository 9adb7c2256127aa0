# The VPC the environment file names (`services.*.vpc`): the services egress into it with
# Direct VPC egress (no connector, so no vpcaccess API), and Cloud SQL's private IP is on
# it. Custom subnet mode: only the one subnetwork below, in the services' region.
resource "google_compute_network" "services" {
  project                 = var.project_id
  name                    = var.network.name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

# Nothing reaches into the VPC: the services only send (Direct VPC egress, replies come
# back on the same connections) and Cloud SQL is reached through the peering. This rule
# is what GCP does implicitly for a new VPC, written out so that it is logged and seen.
resource "google_compute_firewall" "deny_ingress" {
  project       = var.project_id
  name          = "${var.network.name}-deny-ingress"
  network       = google_compute_network.services.id
  description   = "No inbound traffic: the services egress only."
  direction     = "INGRESS"
  priority      = 65534
  source_ranges = ["0.0.0.0/0"]

  deny {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Direct VPC egress takes each instance's address from here (two per instance during a
# revision change), so the range holds the services' max_instances with room to spare.
resource "google_compute_subnetwork" "services" {
  project       = var.project_id
  name          = var.network.subnetwork
  region        = var.region
  network       = google_compute_network.services.id
  ip_cidr_range = var.network.subnetwork_cidr
  # With egress all-traffic the services' calls to Google APIs (sqladmin for the Cloud
  # SQL connector, storage for the run store) leave through the VPC, which has no route
  # to the internet: Private Google Access is what lets them out.
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Private services access: one reserved range and one peering per VPC, shared by every
# private Google service on it (modules/cloud-sql-postgres/README.md, Prerequisites). It
# belongs to the VPC, not to one environment's stack: a second connection would replace
# this one, and destroying it would cut every instance on the VPC off.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${var.network.name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  address       = split("/", var.network.private_services_cidr)[0]
  prefix_length = tonumber(split("/", var.network.private_services_cidr)[1])
  network       = google_compute_network.services.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.services.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}
