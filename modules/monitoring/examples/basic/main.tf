# staging's dashboard and alerts. The monitoring object is what `envctl render staging`
# writes (its "monitoring" key); the queries are shortened here to the console's.
module "monitoring" {
  source = "../.."

  project_id  = "gtfs-gitops-staging"
  environment = "staging"
  services    = ["console", "pipeline"]

  monitoring = {
    thresholds = {
      error_ratio          = 0.02
      p95_seconds          = 1.0
      failed_runs_per_hour = 5
    }
    notification_emails = ["gtfs-developers@example.org"]
    queries = {
      services = {
        console = {
          error_ratio = "sum(rate({\"http.server.request.duration_count\", namespace=\"staging\", job=\"console\", \"error.type\"!=\"\"}[5m])) / sum(rate({\"http.server.request.duration_count\", namespace=\"staging\", job=\"console\"}[5m]))"
          p95         = "histogram_quantile(0.95, sum by (le) (rate({\"http.server.request.duration_bucket\", namespace=\"staging\", job=\"console\", \"http.request.method\"=\"GET\"}[5m])))"
          requests    = "sum(increase({\"http.server.request.duration_count\", namespace=\"staging\", job=\"console\"}[5m]))"
          latency_by_operation = {
            p50 = "histogram_quantile(0.5, sum by (le, \"http.route\") (rate({\"http.server.request.duration_bucket\", namespace=\"staging\", job=\"console\"}[5m])))"
            p95 = "histogram_quantile(0.95, sum by (le, \"http.route\") (rate({\"http.server.request.duration_bucket\", namespace=\"staging\", job=\"console\"}[5m])))"
            p99 = "histogram_quantile(0.99, sum by (le, \"http.route\") (rate({\"http.server.request.duration_bucket\", namespace=\"staging\", job=\"console\"}[5m])))"
          }
        }
      }
      failed_runs_per_hour = "sum(increase({\"pipeline.run.duration_count\", namespace=\"staging\", job=\"pipeline\", \"pipeline.run.status\"=\"RUN_STATUS_FAILED\"}[1h]))"
    }
  }
}
