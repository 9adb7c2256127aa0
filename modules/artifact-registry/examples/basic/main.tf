# The Docker repository of one environment: CI pushes images tagged with the commit SHA,
# the environment's Cloud Run services pull them by digest.
module "registry" {
  source = "../.."

  project_id    = "gtfs-gitops-dev"
  location      = "europe-west1"
  repository_id = "services"
  labels        = { environment = "dev" }
  writer_members = {
    ci = "serviceAccount:ci-images@gtfs-gitops-dev.iam.gserviceaccount.com"
  }
}

output "repository_url" {
  description = "Where CI pushes: europe-west1-docker.pkg.dev/gtfs-gitops-dev/services."
  value       = module.registry.repository_url
}
