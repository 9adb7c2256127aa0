variable "project_id" {
  type        = string
  description = "GCP project that hosts the pool and the CI identities (prod's: its owners decide who counts as which environment)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id: 6-30 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "github_repository" {
  type        = string
  description = "The repository as OWNER/NAME (names the build workflow in job_workflow_ref; never trusted on its own)."

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must be OWNER/NAME."
  }
}

variable "github_repository_id" {
  type        = number
  description = "The repository's numeric id (GitHub's repository_id claim), read by the root from the GitHub API."

  validation {
    condition     = var.github_repository_id > 0 && floor(var.github_repository_id) == var.github_repository_id
    error_message = "github_repository_id must be a positive whole number (the repository's id, not its name)."
  }
}

variable "github_owner_id" {
  type        = number
  description = "The owner's numeric id (GitHub's repository_owner_id claim), read by the root from the GitHub API."

  validation {
    condition     = var.github_owner_id > 0 && floor(var.github_owner_id) == var.github_owner_id
    error_message = "github_owner_id must be a positive whole number (the owner's id, not its login)."
  }
}

variable "pool_id" {
  type        = string
  description = "Workload Identity pool id (a deleted pool's id stays taken for 30 days)."
  default     = "github"

  validation {
    condition     = can(regex("^[a-z0-9-]{4,32}$", var.pool_id)) && !startswith(var.pool_id, "gcp-")
    error_message = "pool_id must be 4-32 lower-case letters, digits and hyphens, not starting with gcp-."
  }
}

variable "provider_id" {
  type        = string
  description = "Workload Identity pool provider id."
  default     = "github-actions"

  validation {
    condition     = can(regex("^[a-z0-9-]{4,32}$", var.provider_id)) && !startswith(var.provider_id, "gcp-")
    error_message = "provider_id must be 4-32 lower-case letters, digits and hyphens, not starting with gcp-."
  }
}
