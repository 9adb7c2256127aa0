output "repository_id" {
  description = "Repository id, e.g. services."
  value       = google_artifact_registry_repository.this.repository_id
}

output "repository_name" {
  description = "Full resource name: projects/PROJECT/locations/LOCATION/repositories/REPOSITORY."
  value       = google_artifact_registry_repository.this.id
}

output "repository_url" {
  description = "Docker registry URL to push and pull from: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY."
  value       = "${google_artifact_registry_repository.this.location}-docker.pkg.dev/${google_artifact_registry_repository.this.project}/${google_artifact_registry_repository.this.repository_id}"
}
