variable "owner" {
  type        = string
  description = "The repository's owner (organisation or user), e.g. example-org."

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}$", var.owner))
    error_message = "owner must be a GitHub organisation or user login."
  }
}

variable "repository" {
  type        = string
  description = "The repository's name (without the owner), e.g. gtfs-gitops."

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,100}$", var.repository))
    error_message = "repository must be a GitHub repository name (letters, digits, '.', '_' and '-')."
  }
}

variable "description" {
  type        = string
  description = "The repository's description (github_repository sets it, so it is owned here)."
  default     = "GitOps deployment of the GTFS pipeline and console to Cloud Run."
}

variable "release_app_id" {
  type        = number
  description = "App id of the release GitHub App (its settings page: 'App ID'): RELEASE_APP_ID, and the only actor that may create deploy/** tags."

  validation {
    condition     = var.release_app_id > 0 && floor(var.release_app_id) == var.release_app_id
    error_message = "release_app_id must be the App's numeric id (not its client id or slug)."
  }
}

variable "prod_reviewers" {
  type = object({
    users = optional(list(string), [])
    teams = optional(list(string), [])
  })
  description = "Who approves every prod deploy (GitHub Environment prod's required reviewers): user logins and team slugs of the owner organisation, at most 6 in all."

  validation {
    condition     = length(var.prod_reviewers.users) + length(var.prod_reviewers.teams) >= 1 && length(var.prod_reviewers.users) + length(var.prod_reviewers.teams) <= 6
    error_message = "prod_reviewers must name 1 to 6 users and teams in all (GitHub allows at most 6 required reviewers)."
  }
}

variable "fresh_plan_reviewers" {
  type = object({
    users = optional(list(string), [])
    teams = optional(list(string), [])
  })
  description = "Who approves a plan made at deploy time that differs from the one reviewed on the PR (GitHub Environment fresh-plan); null uses prod_reviewers."
  default     = null

  validation {
    condition     = var.fresh_plan_reviewers == null || (try(length(var.fresh_plan_reviewers.users) + length(var.fresh_plan_reviewers.teams), 0) >= 1 && try(length(var.fresh_plan_reviewers.users) + length(var.fresh_plan_reviewers.teams), 0) <= 6)
    error_message = "fresh_plan_reviewers must be null or name 1 to 6 users and teams in all."
  }
}

variable "required_approvals" {
  type        = number
  description = "Approving reviews a pull request into main needs."
  default     = 1

  validation {
    condition     = var.required_approvals >= 0 && var.required_approvals <= 10 && floor(var.required_approvals) == var.required_approvals
    error_message = "required_approvals must be a whole number from 0 to 10."
  }
}
