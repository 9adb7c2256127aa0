# A private bucket for one service's objects (the pipeline's input and output zips):
# uniform bucket-level access, public access prevention enforced, no versioning (objects
# are written once under a new name and deleted on purpose; soft delete covers mistakes),
# a lifecycle rule that deletes what the service's own retention missed, and only the
# service's identity granted object access.
resource "google_storage_bucket" "this" {
  #checkov:skip=CKV_GCP_62:usage-log buckets are superseded by Cloud Audit Logs (data access logs on storage.googleapis.com), which also name the identity
  #checkov:skip=CKV_GCP_78:versioning would keep every zip the service's retention deletes; objects are never overwritten, and soft delete (soft_delete_days) restores a mistaken delete
  project                     = var.project_id
  name                        = var.name
  location                    = upper(var.location)
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # A protected bucket is never emptied by a destroy; an unprotected one (dev) is.
  force_destroy = !var.deletion_protection
  labels        = var.labels

  versioning {
    enabled = false
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days * 86400
  }

  dynamic "lifecycle_rule" {
    for_each = var.lifecycle_days > 0 ? [var.lifecycle_days] : []
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  # Uploads a client abandoned mid-way never become objects; drop their parts after a day.
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }
}

# Object read, write, list and delete for the service's identity, on this bucket only:
# no project-wide storage role, no bucket administration.
resource "google_storage_bucket_iam_member" "object_user" {
  bucket = google_storage_bucket.this.name
  role   = "roles/storage.objectUser"
  member = var.member
}
