# One environment: the variables come from `envctl render ENV` (environments/ENV.yaml),
# so the plan a PR shows is the plan applied after merge. The images are owned here, by
# digest, with no ignore_changes: nothing outside the committed file changes what runs.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # Cloud Run's deterministic URL (https://NAME-PROJECT_NUMBER.REGION.run.app) is known
  # before the service exists, so a caller's environment can name its callee without a
  # dependency cycle between instances of module.service. Each in the two forms a
  # variable can hold: "url" (an ID-token audience), "address" (host:443, a gRPC target)
  # and "canary_address" (the gRPC target of the revision tagged `canary`, which a gradual
  # rollout's step 0 gives the callers' own canary revisions, ADR 0022).
  service_urls = {
    for name, _ in var.services : name => "https://${name}-${data.google_project.this.number}.${var.region}.run.app"
  }
  service_endpoints = {
    for name, url in local.service_urls : name => {
      url            = url
      address        = "${trimprefix(url, "https://")}:443"
      canary_address = "canary---${trimprefix(url, "https://")}:443"
    }
  }

  # envctl renders every variable the platform sets (envctl/platform_env.py): `env` is
  # passed on as given; `url_env` names the variables whose value is a service's URL
  # ({service, form}), which only this stack knows (the project number). The stack adds
  # no variable of its own.
  url_env = {
    for name, svc in var.services : name => {
      for key, ref in svc.url_env : key => local.service_endpoints[ref.service][ref.form]
    }
  }

  secret_ids = {
    for name, svc in var.services : name => toset([for ref in values(svc.secret_env) : ref.secret])
  }

  # A service's run store (envctl names its resources as its NAME_DATABASE_URL and
  # NAME_OUTPUT_URL do): a Cloud SQL instance and a bucket, each only when the file has it.
  databases = {
    for name, svc in var.services : name => svc.storage.database if try(svc.storage.database, null) != null
  }
  buckets = {
    for name, svc in var.services : name => svc.storage.bucket if try(svc.storage.bucket, null) != null
  }
}

# The image repository is bootstrap's (bootstrap/modules/project): it must exist before
# any image is copied into it, so before this stack's first apply. The stack only reads
# it, so a plan against a project bootstrap has not prepared fails here, naming it.
data "google_artifact_registry_repository" "images" {
  project       = var.project_id
  location      = var.registry.location
  repository_id = var.registry.repository_id
}

# Environments applied before the registry moved to bootstrap hold it as module.registry:
# forget it, never destroy it (it holds every image the environment ran); bootstrap
# imports it (bootstrap/README.md, "An environment applied before bootstrap existed").
removed {
  from = module.registry
}

module "identity" {
  source   = "../service-identity"
  for_each = var.services

  project_id   = var.project_id
  account_id   = each.value.service_account_id
  display_name = "${each.key} (${var.environment})"
}

module "secret_access" {
  source   = "../secret-access"
  for_each = { for name, ids in local.secret_ids : name => ids if length(ids) > 0 }

  project_id = var.project_id
  secret_ids = each.value
  member     = module.identity[each.key].member
}

module "database" {
  source   = "../cloud-sql-postgres"
  for_each = local.databases

  project_id   = var.project_id
  region       = var.region
  name         = each.value.instance
  network      = each.value.network
  database     = each.value.database
  tier         = each.value.tier
  availability = each.value.availability
  disk_gb      = each.value.disk_gb
  backups = {
    enabled                = each.value.backups
    point_in_time_recovery = each.value.point_in_time_recovery
  }
  query_insights        = each.value.query_insights
  service_account_email = module.identity[each.key].email
  deletion_protection   = var.deletion_protection
  labels                = var.labels
}

module "bucket" {
  source   = "../storage-bucket"
  for_each = local.buckets

  project_id          = var.project_id
  name                = each.value.name
  location            = var.region
  lifecycle_days      = each.value.lifecycle_days
  member              = module.identity[each.key].member
  deletion_protection = var.deletion_protection
  labels              = var.labels
}

module "service" {
  source   = "../cloud-run-service"
  for_each = var.services

  project_id            = var.project_id
  location              = var.region
  name                  = each.key
  description           = "${each.key} in ${var.environment}, managed from environments/${var.environment}.yaml"
  image                 = each.value.image
  commit                = each.value.commit
  service_account_email = module.identity[each.key].email
  ingress               = each.value.ingress
  http2                 = each.value.http2
  scaling = {
    min_instances = each.value.min_instances
    max_instances = each.value.max_instances
  }
  resources = {
    cpu               = each.value.cpu
    memory            = each.value.memory
    startup_cpu_boost = each.value.startup_cpu_boost
  }
  concurrency         = each.value.concurrency
  timeout_seconds     = each.value.timeout_seconds
  startup_probe       = each.value.startup_probe
  liveness_probe      = each.value.liveness_probe
  env                 = merge(each.value.env, local.url_env[each.key])
  secret_env          = each.value.secret_env
  vpc_egress          = each.value.vpc_egress
  traffic             = each.value.traffic
  labels              = var.labels
  deletion_protection = var.deletion_protection

  # A revision must not start before it may read its secrets and reach its run store
  # (its readiness waits for the database).
  depends_on = [module.secret_access, module.database, module.bucket]
}

module "invoker" {
  source   = "../invoker-iam"
  for_each = var.services

  project_id   = var.project_id
  location     = var.region
  service_name = module.service[each.key].service_name
  # Keys are known at plan time (names from the file); the callers' emails may not be.
  members = merge(
    { for member in each.value.invoker_members : member => member },
    { for caller in each.value.callers : "service:${caller}" => module.identity[caller].member },
  )
}

# The dashboard and alert policies over the services' metrics; thresholds, channels and
# the PromQL queries come from the environment file's telemetry section (envctl render).
module "monitoring" {
  source = "../monitoring"

  project_id  = var.project_id
  environment = var.environment
  services    = keys(var.services)
  monitoring  = var.monitoring
}
