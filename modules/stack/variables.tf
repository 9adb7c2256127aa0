variable "environment" {
  type        = string
  description = "Environment name: the file environments/ENVIRONMENT.yaml these variables were rendered from."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.environment))
    error_message = "environment must be a lower-case name such as staging."
  }
}

variable "project_id" {
  type        = string
  description = "GCP project that hosts the environment."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id: 6-30 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  type        = string
  description = "Region of the services and the image repository, e.g. europe-west1."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as europe-west1."
  }
}

variable "registry" {
  type = object({
    location      = string
    repository_id = string
  })
  description = "The Artifact Registry repository the images are pulled from (created by bootstrap/, read here)."
}

variable "deletion_protection" {
  type        = bool
  description = "Whether the Cloud Run services, and the run stores' Cloud SQL instances and buckets, refuse to be destroyed by a plan."
}

variable "labels" {
  type        = map(string)
  description = "Labels on every resource (the provider's default_labels), e.g. environment and managed-by."
  default     = {}
}

variable "services" {
  type = map(object({
    image              = string
    commit             = string
    service_account_id = string
    ingress            = string
    invoker_members    = list(string)
    callers            = list(string)
    calls              = list(string)
    min_instances      = number
    max_instances      = number
    cpu                = string
    memory             = string
    startup_cpu_boost  = bool
    concurrency        = number
    timeout_seconds    = number
    http2              = bool
    startup_probe = object({
      type              = string
      path              = optional(string)
      period_seconds    = number
      failure_threshold = number
    })
    liveness_probe = object({
      type              = string
      path              = optional(string)
      period_seconds    = number
      failure_threshold = number
    })
    env = map(string)
    url_env = map(object({
      service = string
      form    = string
    }))
    secret_env = map(object({
      secret  = string
      version = string
    }))
    vpc_egress = optional(object({
      network    = string
      subnetwork = string
      egress     = string
    }))
    traffic = list(object({
      type     = string
      percent  = number
      revision = optional(string)
      tag      = optional(string)
    }))
    storage = optional(object({
      database = optional(object({
        instance               = string
        database               = string
        network                = string
        tier                   = string
        availability           = string
        disk_gb                = number
        backups                = bool
        point_in_time_recovery = bool
        query_insights         = bool
      }))
      bucket = optional(object({
        name           = string
        lifecycle_days = number
      }))
    }))
  }))
  description = "Services by name, as `envctl render` writes them: image by digest, the commit it was built from, identity, exposure, callers/callees, sizing, probes, env (every plain variable, the platform's included), url_env (variables holding a service's Cloud Run URL: {service, form = url, address or canary_address}), secret references, VPC egress, traffic split, and the run store (storage: its Cloud SQL instance and bucket, named as the service's NAME_DATABASE_URL and NAME_OUTPUT_URL name them)."

  validation {
    condition = alltrue([
      for name, svc in var.services : alltrue([for callee in svc.calls : contains(keys(var.services), callee)])
    ])
    error_message = "services[*].calls must name services of this environment."
  }

  validation {
    condition = alltrue([
      for name, svc in var.services : alltrue([
        for key, ref in svc.url_env : contains(keys(var.services), ref.service) && contains(["url", "address", "canary_address"], ref.form) && !contains(keys(svc.env), key)
      ])
    ])
    error_message = "services[*].url_env must name services of this environment, in form url, address or canary_address, and variables not also in env."
  }
}

variable "monitoring" {
  type = object({
    thresholds = object({
      error_ratio          = number
      p95_seconds          = number
      failed_runs_per_hour = number
    })
    notification_emails = list(string)
    queries = object({
      services = map(object({
        error_ratio          = string
        p95                  = string
        requests             = string
        latency_by_operation = map(string)
      }))
      failed_runs_per_hour = string
    })
  })
  description = "The environment's dashboard and alerts (modules/monitoring): telemetry thresholds, notification emails and PromQL queries, as `envctl render` writes them."
}
