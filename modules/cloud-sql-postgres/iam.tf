# The service account may connect (roles/cloudsql.client: instances.get and .connect,
# what the connector calls) and log in with IAM (roles/cloudsql.instanceUser) on this
# instance only: project-level grants narrowed by an IAM condition on the instance.
locals {
  instance_resource = "projects/${var.project_id}/instances/${var.name}"
  connect_roles = {
    "roles/cloudsql.client"       = "connect to"
    "roles/cloudsql.instanceUser" = "log in with IAM to"
  }
}

resource "google_project_iam_member" "connect" {
  for_each = local.connect_roles

  project = var.project_id
  role    = each.key
  member  = "serviceAccount:${var.service_account_email}"

  condition {
    title       = "only ${var.name}"
    description = "${each.value} the Cloud SQL instance ${var.name} only"
    expression  = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name == \"${local.instance_resource}\""
  }
}
