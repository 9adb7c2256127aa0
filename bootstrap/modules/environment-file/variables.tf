variable "path" {
  type        = string
  description = "Path of one environments/ENV.yaml file, as the calling root sees it (path.root, then ../../../environments/dev.yaml)."

  validation {
    condition     = endswith(var.path, ".yaml") && fileexists(var.path)
    error_message = "path must name an existing environments/ENV.yaml file."
  }
}
