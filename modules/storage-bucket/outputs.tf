output "name" {
  description = "Bucket name (global), e.g. gtfs-gitops-dev-pipeline-runs."
  value       = google_storage_bucket.this.name
}

output "url" {
  description = "The bucket as a gs:// URL: gs://NAME."
  value       = google_storage_bucket.this.url
}

output "lifecycle_days" {
  description = "Age in days after which the bucket deletes an object (0: no lifecycle deletion)."
  value       = var.lifecycle_days
}
