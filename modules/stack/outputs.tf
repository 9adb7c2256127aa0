output "service_urls" {
  description = "Map of service name to its deterministic https:// URL (https://NAME-PROJECT_NUMBER.REGION.run.app), also the ID-token audience callers use."
  value       = local.service_urls
}

output "service_uris" {
  description = "Map of service name to the URL Cloud Run reports for it."
  value       = { for name, svc in module.service : name => svc.service_uri }
}

output "latest_ready_revisions" {
  description = "Map of service name to its newest ready revision (what rollout.stable_revision can name)."
  value       = { for name, svc in module.service : name => svc.latest_ready_revision }
}

output "service_account_emails" {
  description = "Map of service name to the email of its runtime service account."
  value       = { for name, identity in module.identity : name => identity.email }
}

output "registry_url" {
  description = "Docker registry URL of the environment: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY."
  value       = "${data.google_artifact_registry_repository.images.location}-docker.pkg.dev/${data.google_artifact_registry_repository.images.project}/${data.google_artifact_registry_repository.images.repository_id}"
}

output "database_connection_names" {
  description = "Map of service name to its run store's Cloud SQL instance connection name (PROJECT:REGION:INSTANCE)."
  value       = { for name, db in module.database : name => db.connection_name }
}

output "bucket_urls" {
  description = "Map of service name to its run store's bucket as gs://NAME."
  value       = { for name, bucket in module.bucket : name => bucket.url }
}

output "monitoring_dashboard_id" {
  description = "The environment's dashboard: projects/PROJECT_NUMBER/dashboards/ID."
  value       = module.monitoring.dashboard_id
}
