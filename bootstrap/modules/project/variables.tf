variable "environment" {
  type        = string
  description = "Environment name (environments/ENVIRONMENT.yaml): names the deploy identity deploy-ENVIRONMENT and the GitHub Environment that may use it."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}$", var.environment))
    error_message = "environment must be a lower-case name of at most 23 characters, such as staging (deploy-ENVIRONMENT is a service account id of at most 30)."
  }
}

variable "project_id" {
  type        = string
  description = "GCP project of the environment (the file's `project`)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id: 6-30 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  type        = string
  description = "Region of the services, the registry, the subnetwork and the state bucket, e.g. europe-west1."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as europe-west1."
  }
}

variable "state_bucket" {
  type        = string
  description = "Name of the state bucket to create (the file's `state_bucket`): the stack's state and bootstrap's own."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.state_bucket))
    error_message = "state_bucket must be 3-63 lower-case letters, digits, hyphens and underscores, starting and ending with a letter or digit."
  }
}

variable "state_noncurrent_days" {
  type        = number
  description = "Days a replaced or deleted state object version is kept (the window in which a bad apply can be undone by restoring the state)."
  default     = 90

  validation {
    condition     = var.state_noncurrent_days >= 7 && floor(var.state_noncurrent_days) == var.state_noncurrent_days
    error_message = "state_noncurrent_days must be a whole number of days, at least 7."
  }
}

variable "registry" {
  type = object({
    location      = string
    repository_id = string
  })
  description = "The image repository to create, as the file's `registry` names it: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY_ID."
}

variable "network" {
  type = object({
    name                  = string
    subnetwork            = string
    subnetwork_cidr       = optional(string, "10.8.0.0/24")
    private_services_cidr = optional(string, "10.16.0.0/20")
  })
  description = "The VPC the services egress into (the file's `services.*.vpc`): network and subnetwork names, the subnetwork's range, and the range reserved for private services access (Cloud SQL)."

  validation {
    condition     = can(cidrhost(var.network.subnetwork_cidr, 0)) && tonumber(split("/", var.network.subnetwork_cidr)[1]) <= 26
    error_message = "network.subnetwork_cidr must be an IPv4 range of /26 or larger (Direct VPC egress needs at least a /26)."
  }

  validation {
    condition     = can(cidrhost(var.network.private_services_cidr, 0)) && tonumber(split("/", var.network.private_services_cidr)[1]) <= 24
    error_message = "network.private_services_cidr must be an IPv4 range of /24 or larger (private services access allocates from it)."
  }
}

variable "workload_identity_pool" {
  type        = string
  description = "Full name of the GitHub Workload Identity pool (projects/NUMBER/locations/global/workloadIdentityPools/ID), from bootstrap/modules/github-identity."

  validation {
    condition     = can(regex("^projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]+$", var.workload_identity_pool))
    error_message = "workload_identity_pool must be projects/NUMBER/locations/global/workloadIdentityPools/ID."
  }
}

variable "plan_service_account_email" {
  type        = string
  description = "The read-only plan identity (PLAN_SA): gets viewer, security reviewer and read on the state here."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\\.iam\\.gserviceaccount\\.com$", var.plan_service_account_email))
    error_message = "plan_service_account_email must be a user-managed service account: ID@PROJECT.iam.gserviceaccount.com."
  }
}

variable "build_service_account_email" {
  type        = string
  description = "The build identity (BUILD_SA) that pushes new images into this registry, or null where builds do not land (every environment but the first)."
  default     = null

  validation {
    condition     = var.build_service_account_email == null || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\\.iam\\.gserviceaccount\\.com$", var.build_service_account_email))
    error_message = "build_service_account_email must be null or ID@PROJECT.iam.gserviceaccount.com."
  }
}

variable "registry_readers" {
  type        = map(string)
  description = "Who may pull from this registry besides its own services, as {environment = IAM member}: the deploy identities of the environments promoted from this one (envctl.ci copy-images)."
  default     = {}

  validation {
    condition     = alltrue([for member in values(var.registry_readers) : startswith(member, "serviceAccount:")])
    error_message = "registry_readers must map environment names to serviceAccount:EMAIL members."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels on the bucket and the registry, e.g. environment and managed-by."
  default     = {}
}
