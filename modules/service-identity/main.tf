# One service account per service, so each service's permissions (and the audit trail
# of what it did) are its own. Project roles default to writing telemetry only; access
# to other services and secrets is granted on those resources, not project-wide.
resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = var.account_id
  display_name = var.display_name
  description  = var.description
}

resource "google_project_iam_member" "roles" {
  for_each = var.project_roles

  project = var.project_id
  role    = each.value
  member  = google_service_account.this.member
}
