variable "project_id" {
  type        = string
  description = "GCP project that holds the environment's metrics, dashboard and alert policies."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id: 6-30 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  type        = string
  description = "Environment name, shown in the dashboard's and every alert policy's display name."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.environment))
    error_message = "environment must be a lower-case name such as staging."
  }
}

variable "services" {
  type        = list(string)
  description = "The Cloud Run services whose instance count, cold starts and memory the dashboard shows."

  validation {
    condition     = length(var.services) > 0 && alltrue([for s in var.services : can(regex("^[a-z][a-z0-9-]{0,48}$", s))])
    error_message = "services must name at least one Cloud Run service (lower-case letters, digits, hyphens)."
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
  description = "What `envctl render` writes from the environment file's telemetry section: thresholds, who is notified, and the PromQL queries (envctl/monitoring.py) the alerts and the dashboard share with the deploy's metrics check."

  validation {
    condition     = var.monitoring.thresholds.error_ratio > 0 && var.monitoring.thresholds.error_ratio <= 1
    error_message = "monitoring.thresholds.error_ratio must be a share of requests: more than 0, at most 1."
  }

  validation {
    condition     = var.monitoring.thresholds.p95_seconds > 0 && var.monitoring.thresholds.failed_runs_per_hour >= 1
    error_message = "monitoring.thresholds.p95_seconds must be positive and failed_runs_per_hour at least 1."
  }

  validation {
    condition     = alltrue([for e in var.monitoring.notification_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "monitoring.notification_emails must be email addresses."
  }
}

variable "alert_duration_seconds" {
  type        = number
  description = "How long a condition must hold before its alert opens: one bad scrape interval is noise, five minutes is a pattern."
  default     = 300

  validation {
    condition     = var.alert_duration_seconds >= 60 && var.alert_duration_seconds <= 3600
    error_message = "alert_duration_seconds must be between 60 and 3600."
  }
}
