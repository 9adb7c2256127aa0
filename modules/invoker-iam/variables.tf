variable "project_id" {
  type        = string
  description = "GCP project of the Cloud Run service."
}

variable "location" {
  type        = string
  description = "Region of the Cloud Run service."
}

variable "service_name" {
  type        = string
  description = "Name of the Cloud Run service that may be invoked."
}

variable "members" {
  type        = map(string)
  description = "Who may invoke the service, as {stable key = IAM member}, e.g. { \"service:console\" = \"serviceAccount:svc-console@P.iam.gserviceaccount.com\" }."
  default     = {}

  validation {
    condition = alltrue([
      for member in values(var.members) : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):", member))
    ])
    error_message = "members must be user:, group:, serviceAccount:, domain:, principal: or principalSet: members; allUsers and allAuthenticatedUsers would make the service public."
  }
}
