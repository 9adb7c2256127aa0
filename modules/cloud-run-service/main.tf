locals {
  # The commit label lets `gcloud run services list --filter labels.commit=SHA` answer
  # "where does this commit run?"; it is set on the service and on every revision.
  labels = merge(var.labels, { commit = var.commit })
  # gRPC needs HTTP/2 end to end: the port named h2c makes Cloud Run speak cleartext
  # HTTP/2 to the container; http1 is the default for plain HTTP services.
  port_name = var.http2 ? "h2c" : "http1"
  probes = {
    startup  = var.startup_probe
    liveness = var.liveness_probe
  }
}

resource "google_cloud_run_v2_service" "this" {
  project             = var.project_id
  location            = var.location
  name                = var.name
  description         = var.description
  ingress             = var.ingress
  labels              = local.labels
  deletion_protection = var.deletion_protection

  template {
    service_account                  = var.service_account_email
    labels                           = local.labels
    timeout                          = "${var.timeout_seconds}s"
    max_instance_request_concurrency = var.concurrency
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"

    scaling {
      min_instance_count = var.scaling.min_instances
      max_instance_count = var.scaling.max_instances
    }

    dynamic "vpc_access" {
      for_each = var.vpc_egress == null ? [] : [var.vpc_egress]
      content {
        egress = vpc_access.value.egress
        network_interfaces {
          network    = vpc_access.value.network
          subnetwork = vpc_access.value.subnetwork
        }
      }
    }

    containers {
      # Always image@sha256:...: the plan shown on a PR deploys exactly these bytes.
      image = var.image

      ports {
        name           = local.port_name
        container_port = var.container_port
      }

      resources {
        limits = {
          cpu    = var.resources.cpu
          memory = var.resources.memory
        }
        cpu_idle          = true
        startup_cpu_boost = var.resources.startup_cpu_boost
      }

      dynamic "env" {
        for_each = var.env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }

      startup_probe {
        period_seconds    = local.probes.startup.period_seconds
        failure_threshold = local.probes.startup.failure_threshold
        timeout_seconds   = 1

        dynamic "grpc" {
          for_each = local.probes.startup.type == "grpc" ? [1] : []
          content {
            port = var.container_port
          }
        }

        dynamic "http_get" {
          for_each = local.probes.startup.type == "http" ? [1] : []
          content {
            path = local.probes.startup.path
            port = var.container_port
          }
        }
      }

      liveness_probe {
        period_seconds    = local.probes.liveness.period_seconds
        failure_threshold = local.probes.liveness.failure_threshold
        timeout_seconds   = 1

        dynamic "grpc" {
          for_each = local.probes.liveness.type == "grpc" ? [1] : []
          content {
            port = var.container_port
          }
        }

        dynamic "http_get" {
          for_each = local.probes.liveness.type == "http" ? [1] : []
          content {
            path = local.probes.liveness.path
            port = var.container_port
          }
        }
      }
    }
  }

  dynamic "traffic" {
    for_each = var.traffic
    content {
      type     = traffic.value.type
      percent  = traffic.value.percent
      revision = traffic.value.revision
      tag      = traffic.value.tag
    }
  }
}
