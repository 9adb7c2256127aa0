# Let the console read exactly the one secret its environment file references.
module "console_secrets" {
  source = "../.."

  project_id = "gtfs-gitops-dev"
  secret_ids = ["console-session-key"]
  member     = "serviceAccount:svc-console@gtfs-gitops-dev.iam.gserviceaccount.com"
}
