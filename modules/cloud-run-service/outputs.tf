output "service_name" {
  description = "Name of the Cloud Run service."
  value       = google_cloud_run_v2_service.this.name
}

output "service_id" {
  description = "Full resource id: projects/PROJECT/locations/REGION/services/NAME."
  value       = google_cloud_run_v2_service.this.id
}

output "service_uri" {
  description = "The service's https:// URL as Cloud Run reports it."
  value       = google_cloud_run_v2_service.this.uri
}

output "latest_ready_revision" {
  description = "Short name of the newest revision that passed its start-up probe, e.g. pipeline-00042-xyz (what a traffic split names)."
  value       = reverse(split("/", google_cloud_run_v2_service.this.latest_ready_revision))[0]
}

output "location" {
  description = "Region of the service."
  value       = google_cloud_run_v2_service.this.location
}
