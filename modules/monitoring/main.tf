# One environment's dashboard and alert policies over the services' OpenTelemetry metrics
# (sent through Google's Telemetry API, queried in PromQL) and Cloud Run's own metrics.
# The queries come from `envctl render` (envctl/monitoring.py): the alert that pages
# someone and the deploy's metrics check read the same series with the same filters.

locals {
  channel_ids = [for c in google_monitoring_notification_channel.email : c.id]
  # A metric on Cloud Run's monitored resource, by the PromQL name Cloud Monitoring gives it.
  run_series = { for s in var.services : s => "monitored_resource=\"cloud_run_revision\", service_name=\"${s}\"" }

  latency_tiles = flatten([
    for service, q in var.monitoring.queries.services : [
      {
        title   = "${service}: latency of interactive requests (p50, p95, p99, seconds)"
        queries = [for name in ["p50", "p95", "p99"] : q.latency_by_operation[name]]
      },
      {
        title   = "${service}: error ratio (failed / all requests)"
        queries = [q.error_ratio]
      },
      {
        title   = "${service}: requests per 5 minutes"
        queries = [q.requests]
      },
    ]
  ])
  run_tiles = flatten([
    for s in var.services : [
      {
        title   = "${s}: instances"
        queries = ["sum by (state) (run_googleapis_com:container_instance_count{${local.run_series[s]}})"]
      },
      {
        title   = "${s}: cold starts per 5 minutes"
        queries = ["sum(increase(run_googleapis_com:container_startup_latencies_count{${local.run_series[s]}}[5m]))"]
      },
      {
        title   = "${s}: memory used against its limit (p95 of instances)"
        queries = ["histogram_quantile(0.95, sum by (le) (rate(run_googleapis_com:container_memory_utilizations_bucket{${local.run_series[s]}}[5m])))"]
      },
    ]
  ])
  tiles = concat(local.latency_tiles, [{ title = "pipeline: failed runs per hour", queries = [var.monitoring.queries.failed_runs_per_hour] }], local.run_tiles)
}

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.monitoring.notification_emails)

  project      = var.project_id
  display_name = "${var.environment}: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }
}

resource "google_monitoring_alert_policy" "error_ratio" {
  for_each = var.monitoring.queries.services

  project               = var.project_id
  display_name          = "${var.environment} ${each.key}: error ratio over ${var.monitoring.thresholds.error_ratio}"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.channel_ids

  conditions {
    display_name = "${each.key} error ratio > ${var.monitoring.thresholds.error_ratio}"
    condition_prometheus_query_language {
      query               = "(${each.value.error_ratio}) > ${var.monitoring.thresholds.error_ratio}"
      duration            = "${var.alert_duration_seconds}s"
      evaluation_interval = "60s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "More than ${var.monitoring.thresholds.error_ratio * 100} % of ${each.key}'s requests in ${var.environment} failed (5xx or server faults) for ${var.alert_duration_seconds / 60} minutes. The threshold is telemetry.thresholds.error_ratio in environments/${var.environment}.yaml; a trace of a failing request is linked from its log line."
  }
}

resource "google_monitoring_alert_policy" "latency_p95" {
  for_each = var.monitoring.queries.services

  project               = var.project_id
  display_name          = "${var.environment} ${each.key}: p95 latency over ${var.monitoring.thresholds.p95_seconds} s"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channel_ids

  conditions {
    display_name = "${each.key} p95 > ${var.monitoring.thresholds.p95_seconds} s"
    condition_prometheus_query_language {
      query               = "(${each.value.p95}) > ${var.monitoring.thresholds.p95_seconds}"
      duration            = "${var.alert_duration_seconds}s"
      evaluation_interval = "60s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The 95th percentile of ${each.key}'s interactive requests (uploads and downloads left out) in ${var.environment} was over ${var.monitoring.thresholds.p95_seconds} s for ${var.alert_duration_seconds / 60} minutes. Threshold: telemetry.thresholds.p95_seconds in environments/${var.environment}.yaml."
  }
}

resource "google_monitoring_alert_policy" "failed_runs" {
  project               = var.project_id
  display_name          = "${var.environment} pipeline: ${var.monitoring.thresholds.failed_runs_per_hour} or more failed runs in an hour"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channel_ids

  conditions {
    display_name = "failed runs in the last hour >= ${var.monitoring.thresholds.failed_runs_per_hour}"
    condition_prometheus_query_language {
      query               = "(${var.monitoring.queries.failed_runs_per_hour}) >= ${var.monitoring.thresholds.failed_runs_per_hour}"
      duration            = "0s"
      evaluation_interval = "60s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Pipeline runs in ${var.environment} failed ${var.monitoring.thresholds.failed_runs_per_hour} times or more in the last hour. A failed run is the feed's or a step's doing: its error and step results are in the console's run history. Threshold: telemetry.thresholds.failed_runs_per_hour in environments/${var.environment}.yaml."
  }
}

resource "google_monitoring_dashboard" "services" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "${var.environment}: console and pipeline"
    mosaicLayout = {
      columns = 48
      tiles = [
        for i, tile in local.tiles : {
          xPos   = (i % 2) * 24
          yPos   = floor(i / 2) * 16
          width  = 24
          height = 16
          widget = {
            title = tile.title
            xyChart = {
              dataSets = [
                for q in tile.queries : {
                  plotType   = "LINE"
                  targetAxis = "Y1"
                  timeSeriesQuery = {
                    prometheusQuery = q
                  }
                }
              ]
            }
          }
        }
      ]
    }
  })
}
