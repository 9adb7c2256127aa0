output "email" {
  description = "Service account email: ACCOUNT_ID@PROJECT.iam.gserviceaccount.com."
  value       = google_service_account.this.email
}

output "member" {
  description = "IAM member string for the account: serviceAccount:EMAIL."
  value       = google_service_account.this.member
}

output "id" {
  description = "Full resource id: projects/PROJECT/serviceAccounts/EMAIL."
  value       = google_service_account.this.id
}
