output "instance_name" {
  description = "Cloud SQL instance id, e.g. pipeline-runs-dev."
  value       = google_sql_database_instance.this.name
}

output "connection_name" {
  description = "Instance connection name the connectors take: PROJECT:REGION:INSTANCE."
  value       = google_sql_database_instance.this.connection_name
}

output "private_ip_address" {
  description = "The instance's private IPv4 address on the VPC (it has no public one)."
  value       = google_sql_database_instance.this.private_ip_address
}

output "database" {
  description = "Name of the database the service uses, e.g. runs."
  value       = google_sql_database.this.name
}

output "iam_user" {
  description = "The service's IAM database user: its service account email without .gserviceaccount.com."
  value       = google_sql_user.service.name
}
