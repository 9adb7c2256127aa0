output "secret_ids" {
  description = "Secret ids the member was granted roles/secretmanager.secretAccessor on."
  value       = toset([for binding in google_secret_manager_secret_iam_member.accessor : binding.secret_id])
}
