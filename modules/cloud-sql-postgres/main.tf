# A Cloud SQL for PostgreSQL instance for one service's run store: private IP only on the
# services VPC, IAM database authentication (no password anywhere), SSL with client
# certificates (what the Cloud SQL connectors present) and connectors required, one
# database, and the service account's IAM database user. Prerequisites outside this
# module (private services access on the VPC, the APIs): README.md.

locals {
  network = "projects/${var.project_id}/global/networks/${var.network}"
  # Cloud SQL names a service account's IAM database user after its email without this.
  iam_user = trimsuffix(var.service_account_email, ".gserviceaccount.com")
}

resource "google_sql_database_instance" "this" {
  #checkov:skip=CKV_GCP_14:backups are chosen per environment (storage.database.backups); envctl's rule production-storage requires them, and point-in-time recovery, in prod
  #checkov:skip=CKV_GCP_79:POSTGRES_17 is the newest major version google provider 6.50 documents; a major upgrade is its own tested change
  project          = var.project_id
  region           = var.region
  name             = var.name
  database_version = var.database_version
  # The provider's own guard, and the API's (settings.deletion_protection_enabled) below.
  deletion_protection = var.deletion_protection

  settings {
    # Enterprise Plus is the default for PostgreSQL 16 and later and has no db-custom tiers.
    edition           = "ENTERPRISE"
    tier              = var.tier
    availability_type = var.availability
    # The file owns the size: no automatic growth, because a disk cannot shrink and the
    # provider replaces an instance whose configured size is below the real one.
    disk_type                   = "PD_SSD"
    disk_size                   = var.disk_gb
    disk_autoresize             = false
    deletion_protection_enabled = var.deletion_protection
    # A protected instance keeps its automated backups if it is deleted anyway.
    retain_backups_on_delete = var.deletion_protection
    # Only the Cloud SQL Auth Proxy and the language connectors may connect.
    connector_enforcement = "REQUIRED"
    user_labels           = var.labels

    ip_configuration {
      ipv4_enabled    = false
      private_network = local.network
      ssl_mode        = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    backup_configuration {
      enabled                        = var.backups.enabled
      point_in_time_recovery_enabled = var.backups.point_in_time_recovery
      start_time                     = var.backups.start_time
      transaction_log_retention_days = var.backups.point_in_time_recovery ? var.backups.log_retention_days : null

      backup_retention_settings {
        retained_backups = var.backups.retained
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = var.maintenance_window.day
      hour         = var.maintenance_window.hour
      update_track = var.maintenance_window.update_track
    }

    insights_config {
      query_insights_enabled  = var.query_insights
      record_application_tags = var.query_insights
      record_client_address   = false
    }

    # The logging flags the CIS benchmark recommends (checkov CKV_GCP_51-57, 108-111,
    # CKV2_GCP_13), written out so that a scanner reads them without evaluating HCL.
    # IAM database authentication: the only way in (no password)
    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }
    # pgAudit loaded; nothing is audited until a person sets pgaudit.log for an investigation
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    # schema changes (the migrations) are logged, row data never
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
  }
}

resource "google_sql_database" "this" {
  project  = var.project_id
  instance = google_sql_database_instance.this.name
  name     = var.database
  # PostgreSQL refuses to drop a database other roles still own objects in; the
  # instance's own deletion removes it anyway.
  deletion_policy = "ABANDON"
}

# The service account's IAM database user: it logs in with an OAuth token through the
# connector, never with a password. New IAM users hold no privilege on the database:
# README.md, "The database privilege".
resource "google_sql_user" "service" {
  project  = var.project_id
  instance = google_sql_database_instance.this.name
  name     = local.iam_user
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
  # PostgreSQL refuses to drop a role that owns tables; the instance's deletion removes it.
  deletion_policy = "ABANDON"
}
