# Let the console's identity (and nobody else) invoke the pipeline.
module "pipeline_invokers" {
  source = "../.."

  project_id   = "gtfs-gitops-dev"
  location     = "europe-west1"
  service_name = "pipeline"
  members = {
    "service:console" = "serviceAccount:svc-console@gtfs-gitops-dev.iam.gserviceaccount.com"
  }
}
