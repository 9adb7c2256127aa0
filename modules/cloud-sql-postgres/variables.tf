variable "project_id" {
  type        = string
  description = "GCP project of the instance (and of the VPC it attaches to)."
}

variable "region" {
  type        = string
  description = "Region of the instance, e.g. europe-west1 (the services' region)."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as europe-west1."
  }
}

variable "name" {
  type        = string
  description = "Instance id: lower-case letters, digits and hyphens, starting with a letter (a deleted instance's id stays taken for up to a week)."

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.name))
    error_message = "name must be 1-63 lower-case letters, digits and hyphens, starting with a letter and not ending in a hyphen."
  }
}

variable "database_version" {
  type        = string
  description = "PostgreSQL major version (POSTGRES_NN)."
  default     = "POSTGRES_17"

  validation {
    condition     = contains(["POSTGRES_15", "POSTGRES_16", "POSTGRES_17"], var.database_version)
    error_message = "database_version must be one of POSTGRES_15, POSTGRES_16, POSTGRES_17."
  }
}

variable "network" {
  type        = string
  description = "Name of the VPC network (in project_id) the private IP is on; it needs private services access (README.md, Prerequisites)."

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.network))
    error_message = "network must be a VPC network name: lower-case letters, digits and hyphens."
  }
}

variable "database" {
  type        = string
  description = "Name of the one database the service uses."
  default     = "runs"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database))
    error_message = "database must be 1-63 lower-case letters, digits and underscores, starting with a letter."
  }
}

variable "tier" {
  type        = string
  description = "Enterprise-edition machine tier: db-custom-VCPUS-MEMORY_MB, or the shared-core db-f1-micro / db-g1-small."

  validation {
    condition     = can(regex("^db-(f1-micro|g1-small|custom-[1-9][0-9]*-[1-9][0-9]{2,5})$", var.tier))
    error_message = "tier must be db-custom-VCPUS-MEMORY_MB (e.g. db-custom-1-3840), db-f1-micro or db-g1-small."
  }
}

variable "availability" {
  type        = string
  description = "ZONAL (one zone) or REGIONAL (a standby in a second zone with automatic failover)."
  default     = "ZONAL"

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.availability)
    error_message = "availability must be ZONAL or REGIONAL."
  }
}

variable "disk_gb" {
  type        = number
  description = "SSD size in GB (10 or more). Fixed: grow it by changing this value; it can never shrink."
  default     = 10

  validation {
    condition     = var.disk_gb >= 10 && var.disk_gb <= 65536 && floor(var.disk_gb) == var.disk_gb
    error_message = "disk_gb must be a whole number of GB from 10 to 65536."
  }
}

variable "backups" {
  type = object({
    enabled                = bool
    point_in_time_recovery = bool
    retained               = optional(number, 7)
    log_retention_days     = optional(number, 7)
    start_time             = optional(string, "02:00")
  })
  description = "Automated backups: enabled, point-in-time recovery (needs backups), how many daily backups are kept, how many days of write-ahead log, and when the backup starts (HH:MM UTC)."

  validation {
    condition     = var.backups.enabled || !var.backups.point_in_time_recovery
    error_message = "backups.point_in_time_recovery needs backups.enabled: recovery starts from a backup."
  }

  validation {
    condition     = var.backups.retained >= 1 && var.backups.retained <= 365 && var.backups.log_retention_days >= 1 && var.backups.log_retention_days <= 7
    error_message = "backups.retained must be 1-365 backups and backups.log_retention_days 1-7 days (the Enterprise edition's limit)."
  }

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.backups.start_time))
    error_message = "backups.start_time must be a UTC time HH:MM."
  }
}

variable "maintenance_window" {
  type = object({
    day          = number
    hour         = number
    update_track = optional(string, "stable")
  })
  description = "When Cloud SQL may restart the instance for updates: day 1-7 (Monday-Sunday), hour 0-23 UTC, update_track canary, stable or week5."
  default     = { day = 7, hour = 3 }

  validation {
    condition     = contains([1, 2, 3, 4, 5, 6, 7], var.maintenance_window.day) && var.maintenance_window.hour >= 0 && var.maintenance_window.hour <= 23 && contains(["canary", "stable", "week5"], var.maintenance_window.update_track)
    error_message = "maintenance_window must have day 1-7, hour 0-23 and update_track canary, stable or week5."
  }
}

variable "query_insights" {
  type        = bool
  description = "Query Insights: query plans and load in the console (client addresses are never recorded)."
  default     = false
}

variable "service_account_email" {
  type        = string
  description = "The service's runtime service account: it gets the IAM database user and may connect to this instance only."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\\.iam\\.gserviceaccount\\.com$", var.service_account_email))
    error_message = "service_account_email must be a user-managed service account: ID@PROJECT.iam.gserviceaccount.com."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Whether the instance refuses to be deleted (by OpenTofu and by the API) and keeps its backups if it is deleted anyway."
}

variable "labels" {
  type        = map(string)
  description = "Labels on the instance (settings.user_labels), e.g. environment and managed-by."
  default     = {}
}
