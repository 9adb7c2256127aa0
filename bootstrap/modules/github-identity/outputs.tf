output "workload_identity_pool" {
  description = "Full name of the pool: projects/NUMBER/locations/global/workloadIdentityPools/ID (principalSet bindings name it)."
  value       = google_iam_workload_identity_pool.github.name
}

output "workload_identity_provider" {
  description = "Full name of the provider, what google-github-actions/auth takes (WIF_PROVIDER): projects/NUMBER/locations/global/workloadIdentityPools/ID/providers/ID."
  value       = google_iam_workload_identity_pool_provider.github.name
}

output "build_service_account_email" {
  description = "Email of the build identity (BUILD_SA): ci-build@PROJECT.iam.gserviceaccount.com."
  value       = google_service_account.build.email
}

output "plan_service_account_email" {
  description = "Email of the read-only plan identity (PLAN_SA): ci-plan@PROJECT.iam.gserviceaccount.com."
  value       = google_service_account.plan.email
}
