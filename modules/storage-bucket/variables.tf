variable "project_id" {
  type        = string
  description = "GCP project that owns the bucket."
}

variable "name" {
  type        = string
  description = "Bucket name, global across Google Cloud (start it with the project id)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.name)) && !can(regex("goog|google", var.name))
    error_message = "name must be 3-63 lower-case letters, digits, hyphens and underscores, start and end with a letter or digit, and not contain goog or google."
  }
}

variable "location" {
  type        = string
  description = "Region of the bucket, e.g. europe-west1: beside the service that reads and writes it."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.location))
    error_message = "location must be a GCP region such as europe-west1."
  }
}

variable "lifecycle_days" {
  type        = number
  description = "The bucket deletes objects older than this many days (0: no lifecycle deletion). Keep it above the service's own retention, so only objects the service failed to delete are removed."

  validation {
    condition     = var.lifecycle_days >= 0 && floor(var.lifecycle_days) == var.lifecycle_days
    error_message = "lifecycle_days must be a whole number of days, 0 or more."
  }
}

variable "soft_delete_days" {
  type        = number
  description = "How long a deleted object can still be restored (0, or 7 to 90 days)."
  default     = 7

  validation {
    condition     = var.soft_delete_days == 0 || (var.soft_delete_days >= 7 && var.soft_delete_days <= 90)
    error_message = "soft_delete_days must be 0 (off) or 7 to 90 days."
  }
}

variable "member" {
  type        = string
  description = "The one identity that reads and writes objects, serviceAccount:EMAIL of a service identity (roles/storage.objectUser on this bucket)."

  validation {
    condition     = can(regex("^(serviceAccount|principal|principalSet):", var.member))
    error_message = "member must be a workload identity (serviceAccount:, principal: or principalSet:); people do not write the service's objects."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Whether a destroy must leave a bucket that still holds objects (force_destroy = !deletion_protection)."
}

variable "labels" {
  type        = map(string)
  description = "Labels on the bucket, e.g. environment and managed-by."
  default     = {}
}
