variable "project_id" {
  type        = string
  description = "GCP project of the service."
}

variable "location" {
  type        = string
  description = "Region of the service, e.g. europe-west1."
}

variable "name" {
  type        = string
  description = "Service name: lower-case letters, digits and hyphens, starting with a letter."

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$", var.name))
    error_message = "name must be lower-case letters, digits and hyphens, start with a letter, not end with a hyphen, at most 49 characters."
  }
}

variable "description" {
  type        = string
  description = "Human description of the service."
  default     = null
}

variable "image" {
  type        = string
  description = "Image by digest: REGISTRY/NAME@sha256:HEX. Tags (and latest) are refused: a tag can move, a digest cannot."

  validation {
    condition     = can(regex("^[^@:]+(:[0-9]+)?/[^@:]+@sha256:[0-9a-f]{64}$", var.image))
    error_message = "image must be pinned by digest: REGISTRY/NAME@sha256:<64 hex digits>, with no tag."
  }
}

variable "commit" {
  type        = string
  description = "Full 40-hex git commit SHA the image was built from; set as the commit label on the service and its revisions."

  validation {
    condition     = can(regex("^[0-9a-f]{40}$", var.commit))
    error_message = "commit must be a full 40-character lower-case hex git SHA."
  }
}

variable "service_account_email" {
  type        = string
  description = "Email of the service's own runtime service account."
}

variable "ingress" {
  type        = string
  description = "Where requests may come from."
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be one of INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY, INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "http2" {
  type        = bool
  description = "Serve HTTP/2 end to end (port name h2c); required for gRPC."
  default     = false
}

variable "container_port" {
  type        = number
  description = "Port the container listens on (Cloud Run passes it as $PORT)."
  default     = 8080

  validation {
    condition     = var.container_port >= 1 && var.container_port <= 65535 && floor(var.container_port) == var.container_port
    error_message = "container_port must be a whole number from 1 to 65535."
  }
}

variable "scaling" {
  type = object({
    min_instances = number
    max_instances = number
  })
  description = "Instance count bounds; min_instances > 0 keeps instances warm."
  default = {
    min_instances = 0
    max_instances = 3
  }

  validation {
    condition     = var.scaling.min_instances >= 0 && var.scaling.max_instances >= 1 && var.scaling.min_instances <= var.scaling.max_instances
    error_message = "scaling needs 0 <= min_instances <= max_instances and max_instances >= 1."
  }
}

variable "resources" {
  type = object({
    cpu               = string
    memory            = string
    startup_cpu_boost = optional(bool, true)
  })
  description = "CPU limit ('1', '2', '500m'), memory limit ('512Mi', '2Gi') and whether start-up gets extra CPU."
  default = {
    cpu    = "1"
    memory = "512Mi"
  }

  validation {
    condition     = can(regex("^([1-8]|[1-9][0-9]{2,3}m)$", var.resources.cpu)) && can(regex("^[1-9][0-9]*(Mi|Gi)$", var.resources.memory))
    error_message = "resources.cpu must be '1'..'8' or millicores like '500m'; resources.memory a size like '512Mi' or '2Gi'."
  }
}

variable "concurrency" {
  type        = number
  description = "Maximum concurrent requests per instance."
  default     = 80

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be from 1 to 1000."
  }
}

variable "timeout_seconds" {
  type        = number
  description = "Request timeout in seconds."
  default     = 300

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 3600
    error_message = "timeout_seconds must be from 1 to 3600."
  }
}

variable "startup_probe" {
  type = object({
    type              = string
    path              = optional(string)
    period_seconds    = optional(number, 5)
    failure_threshold = optional(number, 24)
  })
  description = "Start-up probe: type grpc (grpc.health.v1 on the serving port) or http (GET path)."

  validation {
    condition     = contains(["grpc", "http"], var.startup_probe.type) && (var.startup_probe.type == "grpc" || var.startup_probe.path != null)
    error_message = "startup_probe.type must be grpc or http; an http probe needs a path."
  }
}

variable "liveness_probe" {
  type = object({
    type              = string
    path              = optional(string)
    period_seconds    = optional(number, 30)
    failure_threshold = optional(number, 3)
  })
  description = "Liveness probe: type grpc or http (GET path); failing it restarts the instance."

  validation {
    condition     = contains(["grpc", "http"], var.liveness_probe.type) && (var.liveness_probe.type == "grpc" || var.liveness_probe.path != null)
    error_message = "liveness_probe.type must be grpc or http; an http probe needs a path."
  }
}

variable "env" {
  type        = map(string)
  description = "Plain environment variables. Never secret values: use secret_env."
  default     = {}
}

variable "secret_env" {
  type = map(object({
    secret  = string
    version = string
  }))
  description = "Environment variables read from Secret Manager: {NAME = {secret = ID, version = \"3\"}}."
  default     = {}

  validation {
    condition     = alltrue([for ref in values(var.secret_env) : can(regex("^[1-9][0-9]*$", ref.version))])
    error_message = "secret_env versions must be pinned numbers such as \"3\", never latest."
  }
}

variable "vpc_egress" {
  type = object({
    network    = string
    subnetwork = string
    egress     = string
  })
  description = "Direct VPC egress, or null for none. egress ALL_TRAFFIC is needed to call an internal-ingress service."
  default     = null

  validation {
    condition     = var.vpc_egress == null || contains(["ALL_TRAFFIC", "PRIVATE_RANGES_ONLY"], try(var.vpc_egress.egress, ""))
    error_message = "vpc_egress.egress must be ALL_TRAFFIC or PRIVATE_RANGES_ONLY."
  }
}

variable "traffic" {
  type = list(object({
    type     = string
    percent  = number
    revision = optional(string)
    tag      = optional(string)
  }))
  description = "Traffic split. Default: everything to the latest revision. A canary lists LATEST with a small percent and tag canary, plus the stable REVISION."
  default = [{
    type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    percent = 100
  }]

  validation {
    condition     = sum([for t in var.traffic : t.percent]) == 100 && alltrue([for t in var.traffic : contains(["TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"], t.type)])
    error_message = "traffic percents must add up to 100, and each type must be TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST or TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels for the service and its revisions (commit is added from var.commit)."
  default     = {}
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to destroy the service from a plan."
  default     = true
}
