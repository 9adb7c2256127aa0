# One environment: the variables come from `envctl render ENV` (environments/ENV.yaml),
# so the plan a PR shows is the plan applied after merge. The images are owned here, by
# digest, with no ignore_changes: nothing outside the committed file changes what runs.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # Cloud Run's deterministic URL (https://NAME-PROJECT_NUMBER.REGION.run.app) is known
  # before the service exists, so a caller's environment can name its callee without a
  # dependency cycle between instances of module.service.
  service_urls = {
    for name, _ in var.services : name => "https://${name}-${data.google_project.this.number}.${var.region}.run.app"
  }

  # For each callee: NAME_ADDR (host:443), NAME_TLS and NAME_AUDIENCE (the ID-token
  # audience). envctl.local injects the same names with loopback addresses.
  call_env = {
    for name, svc in var.services : name => merge([
      for callee in svc.calls : {
        "${upper(replace(callee, "-", "_"))}_ADDR"     = "${trimprefix(local.service_urls[callee], "https://")}:443"
        "${upper(replace(callee, "-", "_"))}_TLS"      = "true"
        "${upper(replace(callee, "-", "_"))}_AUDIENCE" = local.service_urls[callee]
      }
    ]...)
  }

  # What each service needs to know about itself: the project, so log lines link to
  # their traces in Cloud Trace (Cloud Run does not set it), and for a callee the
  # audience its callers' ID tokens must carry (its own URL), next to the
  # NAME_REQUIRE_ID_TOKEN / NAME_ALLOWED_INVOKERS that envctl renders (ADR 0018).
  self_env = {
    for name, svc in var.services : name => merge(
      { "GOOGLE_CLOUD_PROJECT" = var.project_id },
      length(svc.callers) > 0 ? { "${upper(replace(name, "-", "_"))}_TOKEN_AUDIENCE" = local.service_urls[name] } : {}
    )
  }

  secret_ids = {
    for name, svc in var.services : name => toset([for ref in values(svc.secret_env) : ref.secret])
  }
}

module "registry" {
  source = "../artifact-registry"

  project_id    = var.project_id
  location      = var.registry.location
  repository_id = var.registry.repository_id
  labels        = var.labels
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
  env                 = merge(each.value.env, local.call_env[each.key], local.self_env[each.key])
  secret_env          = each.value.secret_env
  vpc_egress          = each.value.vpc_egress
  traffic             = each.value.traffic
  labels              = var.labels
  deletion_protection = var.deletion_protection

  # A revision that reads a secret must not start before it may read it.
  depends_on = [module.secret_access]
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
