# The gRPC pipeline service: internal only, HTTP/2 end to end, started when
# grpc.health.v1 says SERVING, image pinned by digest.
module "pipeline_identity" {
  source = "../../../service-identity"

  project_id   = "gtfs-gitops-dev"
  account_id   = "svc-pipeline"
  display_name = "pipeline (dev)"
}

module "pipeline" {
  source = "../.."

  project_id            = "gtfs-gitops-dev"
  location              = "europe-west1"
  name                  = "pipeline"
  image                 = "europe-west1-docker.pkg.dev/gtfs-gitops-dev/services/pipeline@sha256:43bb00d0ce7790a53b91256b370c887b24791a5539a6fbfb70c5870e8c91ae5d"
  commit                = "a625406f6977d45c1391b078f4d3656e0b75bfcb"
  service_account_email = module.pipeline_identity.email
  ingress               = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  http2                 = true
  scaling               = { min_instances = 0, max_instances = 2 }
  resources             = { cpu = "1", memory = "1Gi" }
  concurrency           = 4
  timeout_seconds       = 900
  startup_probe         = { type = "grpc" }
  liveness_probe        = { type = "grpc" }
  env = {
    PIPELINES_DIR = "/app/pipelines"
    PIPELINE_NAME = "metro_schedule"
  }
  vpc_egress = {
    network    = "gtfs-services"
    subnetwork = "gtfs-services-europe-west1"
    egress     = "ALL_TRAFFIC"
  }
  deletion_protection = false
}

output "service_uri" {
  description = "The pipeline's https:// URL."
  value       = module.pipeline.service_uri
}
