variable "project_id" {
  type        = string
  description = "GCP project that owns the repository."
}

variable "location" {
  type        = string
  description = "Region of the repository, e.g. europe-west1 (keep it beside the services that pull)."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.location))
    error_message = "location must be a GCP region such as europe-west1."
  }
}

variable "repository_id" {
  type        = string
  description = "Repository id: the last part of LOCATION-docker.pkg.dev/PROJECT/REPOSITORY."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.repository_id))
    error_message = "repository_id must start with a lower-case letter and hold only lower-case letters, digits and hyphens (at most 63)."
  }
}

variable "description" {
  type        = string
  description = "Human description shown in the console."
  default     = "Service images, tagged with the git commit SHA they were built from."
}

variable "labels" {
  type        = map(string)
  description = "Labels set on the repository."
  default     = {}
}

variable "kms_key_name" {
  type        = string
  description = "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) to encrypt images with; null keeps Google-managed encryption."
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY."
  }
}

variable "reader_members" {
  type        = map(string)
  description = "Who may pull, as {stable key = IAM member}. Keys must be known at plan time; values may be computed (e.g. a service account created in the same plan)."
  default     = {}
}

variable "writer_members" {
  type        = map(string)
  description = "Who may push (the CI build identity), as {stable key = IAM member}."
  default     = {}
}
