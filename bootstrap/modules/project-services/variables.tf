variable "project_id" {
  type        = string
  description = "GCP project whose APIs are enabled."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id: 6-30 lower-case letters, digits and hyphens, starting with a letter."
  }
}
