# One GCP project's foundation, applied once by a person with owner rights before the
# first deploy (bootstrap/README.md): the state bucket and the image registry here, the
# VPC in network.tf, the deploy identity and the plan identity's reads in iam.tf. The
# APIs are enabled first by bootstrap/modules/project-services (the root orders it).

# The state of this project's stack (prefix environments/ENV) and of bootstrap itself
# (prefix bootstrap/gcp). Versioned, so an apply that went wrong can be undone by
# restoring the previous state object; old versions are deleted after
# var.state_noncurrent_days, which bounds the bucket without losing recent history.
resource "google_storage_bucket" "state" {
  #checkov:skip=CKV_GCP_62:usage-log buckets are superseded by Cloud Audit Logs (data access logs on storage.googleapis.com), which also name the identity that read or wrote the state
  project                     = var.project_id
  name                        = var.state_bucket
  location                    = upper(var.region)
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.state_noncurrent_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  # The state is the only record of what OpenTofu manages; losing it orphans a project.
  lifecycle {
    prevent_destroy = true
  }
}

# The image repository, here rather than in the stack: deploy.yml copies images into it
# before the stack's first apply, and build.yml pushes into dev's before dev's first
# deploy. Immutable tags, no cleanup policy (modules/artifact-registry).
module "registry" {
  source = "../../../modules/artifact-registry"

  project_id    = var.project_id
  location      = var.registry.location
  repository_id = var.registry.repository_id
  labels        = var.labels
  # The deploy identity copies promoted images in (envctl.ci copy-images); the build
  # identity pushes new ones (only into the environment builds land in).
  writer_members = merge(
    { deploy = google_service_account.deploy.member },
    var.build_service_account_email == null ? {} : { build = "serviceAccount:${var.build_service_account_email}" },
  )
  # The deploy identities of the environments promoted from this one copy from here.
  reader_members = var.registry_readers
}
