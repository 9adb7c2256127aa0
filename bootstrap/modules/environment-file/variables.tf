variable "path" {
  type        = string
  description = "Path of the environment file, e.g. \"${path.root}/../../../environments/dev.yaml\"."

  validation {
    condition     = endswith(var.path, ".yaml") && fileexists(var.path)
    error_message = "path must name an existing environments/ENV.yaml file."
  }
}
