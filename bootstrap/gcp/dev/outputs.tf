output "environment" {
  description = "Environment name, e.g. dev."
  value       = module.file.environment
}

output "project_id" {
  description = "GCP project of the environment."
  value       = module.file.project_id
}

output "state_bucket" {
  description = "The state bucket (the stack's backend: envctl render ENV --backend)."
  value       = module.project.state_bucket
}

output "registry_url" {
  description = "Docker registry URL: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY."
  value       = module.project.registry_url
}

output "deploy_service_account_email" {
  description = "DEPLOY_SA of GitHub Environment dev."
  value       = module.project.deploy_service_account_email
}

output "deploy_member" {
  description = "The deploy identity as an IAM member (the upstream registry grants it read)."
  value       = module.project.deploy_member
}
