# dev's run-store bucket: only the pipeline's identity reads and writes its zips; the
# bucket deletes what the pipeline's 14-day retention missed a week later.
module "pipeline_runs" {
  source = "../.."

  project_id          = "gtfs-gitops-dev"
  name                = "gtfs-gitops-dev-pipeline-runs"
  location            = "europe-west1"
  lifecycle_days      = 21
  member              = "serviceAccount:svc-pipeline@gtfs-gitops-dev.iam.gserviceaccount.com"
  deletion_protection = false
}
