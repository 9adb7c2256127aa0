variable "github_repository" {
  type        = string
  description = "The GitHub repository that deploys here, as OWNER/NAME; its numeric ids are read from GitHub, never typed."

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must be OWNER/NAME, e.g. example-org/gtfs-gitops."
  }
}
