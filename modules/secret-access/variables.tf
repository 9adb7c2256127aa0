variable "project_id" {
  type        = string
  description = "GCP project that holds the secrets."
}

variable "secret_ids" {
  type        = set(string)
  description = "Secret Manager secret ids (not versions, not values) the member may read."

  validation {
    condition     = alltrue([for id in var.secret_ids : can(regex("^[A-Za-z0-9_-]{1,255}$", id))])
    error_message = "secret_ids must be Secret Manager secret ids: letters, digits, underscores and hyphens."
  }
}

variable "member" {
  type        = string
  description = "IAM member that reads the secrets, usually serviceAccount:EMAIL of a service identity."

  validation {
    condition     = can(regex("^(serviceAccount|principal|principalSet):", var.member))
    error_message = "member must be a workload identity (serviceAccount:, principal: or principalSet:); people do not read runtime secrets."
  }
}
