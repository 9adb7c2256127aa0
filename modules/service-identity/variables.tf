variable "project_id" {
  type        = string
  description = "GCP project the service account lives in."
}

variable "account_id" {
  type        = string
  description = "Service account id (the part before @): 6-30 lower-case letters, digits and hyphens."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.account_id))
    error_message = "account_id must be 6-30 characters: a lower-case letter first, then lower-case letters, digits or hyphens, not ending in a hyphen."
  }
}

variable "display_name" {
  type        = string
  description = "Human name shown in the console."
}

variable "description" {
  type        = string
  description = "What the account is for."
  default     = "Runtime identity of one Cloud Run service, managed by OpenTofu from environments/."
}

variable "project_roles" {
  type        = set(string)
  description = "Project-level roles: telemetry only by default. Grant access to other resources on those resources instead."
  default = [
    "roles/cloudtrace.agent",
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    # OTLP to telemetry.googleapis.com (ADR 0027) checks telemetry.traces.write and
    # telemetry.metrics.write, which the Cloud Trace and Monitoring roles above predate.
    "roles/telemetry.tracesWriter",
    "roles/telemetry.metricsWriter",
  ]

  validation {
    condition = alltrue([
      for role in var.project_roles : !contains(["roles/owner", "roles/editor", "roles/viewer"], role) && !endswith(role, ".admin")
    ])
    error_message = "project_roles must not hold basic roles (roles/owner, roles/editor, roles/viewer) or *.admin roles: grant the narrow role the service needs."
  }
}
