output "members" {
  description = "Map of stable key to IAM member holding roles/run.invoker on the service."
  value       = { for key, binding in google_cloud_run_v2_service_iam_member.invoker : key => binding.member }
}
