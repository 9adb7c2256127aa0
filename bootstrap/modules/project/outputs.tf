output "deploy_service_account_email" {
  description = "Email of the deploy identity (DEPLOY_SA of GitHub Environment ENV): deploy-ENV@PROJECT.iam.gserviceaccount.com."
  value       = google_service_account.deploy.email
}

output "deploy_member" {
  description = "The deploy identity as an IAM member: serviceAccount:deploy-ENV@PROJECT.iam.gserviceaccount.com."
  value       = google_service_account.deploy.member
}

output "state_bucket" {
  description = "Name of the state bucket (backend bucket of the stack and of bootstrap)."
  value       = google_storage_bucket.state.name
}

output "registry_url" {
  description = "Docker registry URL: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY (the file's `registry`)."
  value       = module.registry.repository_url
}

output "network_id" {
  description = "The VPC's resource id: projects/PROJECT/global/networks/NAME."
  value       = google_compute_network.services.id
}

output "subnetwork_id" {
  description = "The services subnetwork's resource id: projects/PROJECT/regions/REGION/subnetworks/NAME."
  value       = google_compute_subnetwork.services.id
}
