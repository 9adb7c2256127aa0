# The APIs one environment's project needs, enabled before anything else in bootstrap
# (the roots make every other module depend on this one).

locals {
  # Every API the stack (modules/stack) and the deploy workflows call, each with why.
  # serviceusage and cloudresourcemanager are listed too, though enabling anything needs
  # them on already (bootstrap/README.md, step 1): listing them keeps them on.
  apis = {
    "serviceusage.googleapis.com"         = "enabling the others; quota accounting of every call"
    "cloudresourcemanager.googleapis.com" = "project IAM policy (the services' roles) and the project number the stack reads"
    "run.googleapis.com"                  = "the Cloud Run services"
    "artifactregistry.googleapis.com"     = "the image repository the services pull from"
    "secretmanager.googleapis.com"        = "the secrets the services reference (and the stack grants access to)"
    "iam.googleapis.com"                  = "service accounts: the services' runtime identities and the deploy identity"
    "iamcredentials.googleapis.com"       = "short-lived tokens for service accounts (Workload Identity Federation, the smoke check's ID token)"
    "sts.googleapis.com"                  = "Security Token Service: exchanges a GitHub OIDC token for a federated token"
    "compute.googleapis.com"              = "the VPC and subnetwork Cloud Run's Direct VPC egress uses"
    "servicenetworking.googleapis.com"    = "private services access: the peering that gives Cloud SQL a private IP on the VPC"
    "sqladmin.googleapis.com"             = "Cloud SQL: the run store's instance, and the Cloud SQL connector's calls"
    "storage.googleapis.com"              = "the state bucket and the run store's bucket"
    "logging.googleapis.com"              = "the services' structured logs"
    "monitoring.googleapis.com"           = "the services' metrics (OTLP export) and Cloud Run's own"
    "cloudtrace.googleapis.com"           = "the services' traces"
    "telemetry.googleapis.com"            = "the OTLP endpoint the services export traces and metrics to (ADR 0027)"
  }
}

resource "google_project_service" "apis" {
  for_each = local.apis

  project = var.project_id
  service = each.key
  # Destroying bootstrap must never switch an API off under running services, nor
  # disable the APIs other services depend on.
  disable_on_destroy         = false
  disable_dependent_services = false
}
