# dev's run store: the smallest instance, private IP on the services VPC, the pipeline's
# service account as its IAM database user.
module "pipeline_runs" {
  source = "../.."

  project_id   = "gtfs-gitops-dev"
  region       = "europe-west1"
  name         = "pipeline-runs-dev"
  network      = "gtfs-services"
  database     = "runs"
  tier         = "db-f1-micro"
  availability = "ZONAL"
  disk_gb      = 10
  backups = {
    enabled                = false
    point_in_time_recovery = false
  }
  service_account_email = "svc-pipeline@gtfs-gitops-dev.iam.gserviceaccount.com"
  deletion_protection   = false
}
