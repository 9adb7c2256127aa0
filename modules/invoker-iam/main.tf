# roles/run.invoker on one Cloud Run service. Members are keyed by a stable name so the
# set is known at plan time even when a member (a service account of the same plan) is not.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = var.members

  project  = var.project_id
  location = var.location
  name     = var.service_name
  role     = "roles/run.invoker"
  member   = each.value
}
