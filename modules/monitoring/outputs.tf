output "dashboard_id" {
  description = "The dashboard's resource name: projects/PROJECT_NUMBER/dashboards/ID."
  value       = google_monitoring_dashboard.services.id
}

output "alert_policy_names" {
  description = "Map of alert (error_ratio.SERVICE, latency_p95.SERVICE, failed_runs) to its resource name, projects/PROJECT/alertPolicies/ID."
  value = merge(
    { for s, p in google_monitoring_alert_policy.error_ratio : "error_ratio.${s}" => p.name },
    { for s, p in google_monitoring_alert_policy.latency_p95 : "latency_p95.${s}" => p.name },
    { "failed_runs" = google_monitoring_alert_policy.failed_runs.name },
  )
}

output "notification_channel_ids" {
  description = "Map of email address to its notification channel's resource name, projects/PROJECT/notificationChannels/ID."
  value       = { for e, c in google_monitoring_notification_channel.email : e => c.id }
}
