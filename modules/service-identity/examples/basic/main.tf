# The runtime identity of the pipeline service: its own account, telemetry roles only.
module "pipeline_identity" {
  source = "../.."

  project_id   = "gtfs-gitops-dev"
  account_id   = "svc-pipeline"
  display_name = "pipeline (dev)"
}

output "email" {
  description = "svc-pipeline@gtfs-gitops-dev.iam.gserviceaccount.com"
  value       = module.pipeline_identity.email
}
