# roles/secretmanager.secretAccessor on each named secret, never project-wide: a service
# reads exactly the secrets its environment file references.
resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = var.secret_ids

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = var.member
}
