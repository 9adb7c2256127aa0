output "environment" {
  description = "Environment name, e.g. prod."
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
  description = "DEPLOY_SA of GitHub Environment prod."
  value       = module.project.deploy_service_account_email
}

output "deploy_member" {
  description = "The deploy identity as an IAM member (the upstream registry grants it read)."
  value       = module.project.deploy_member
}

output "workload_identity_pool" {
  description = "Full name of the GitHub pool: projects/NUMBER/locations/global/workloadIdentityPools/ID."
  value       = module.identity.workload_identity_pool
}

output "workload_identity_provider" {
  description = "WIF_PROVIDER: projects/NUMBER/locations/global/workloadIdentityPools/ID/providers/ID."
  value       = module.identity.workload_identity_provider
}

output "build_service_account_email" {
  description = "BUILD_SA: pushes images into the first environment's registry."
  value       = module.identity.build_service_account_email
}

output "plan_service_account_email" {
  description = "PLAN_SA: read-only, for plan.yml, drift.yml and deploy.yml's plan step."
  value       = module.identity.plan_service_account_email
}
