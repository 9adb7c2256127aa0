# prod's project, and the GitHub identity pool every environment's deploy identity binds
# to: applied first (bootstrap/README.md, "Order"). Everything project-specific comes
# from environments/prod.yaml.

module "file" {
  source = "../../modules/environment-file"
  path   = "${path.root}/../../../environments/prod.yaml"
}

module "services" {
  source     = "../../modules/project-services"
  project_id = module.file.project_id
}

# The ids GitHub puts in every token's repository_id and repository_owner_id claims.
# users/OWNER answers for organisations too.
data "github_repository" "this" {
  full_name = var.github_repository
}

data "github_user" "owner" {
  username = split("/", var.github_repository)[0]
}

module "identity" {
  source = "../../modules/github-identity"

  project_id           = module.file.project_id
  github_repository    = data.github_repository.this.full_name
  github_repository_id = data.github_repository.this.repo_id
  github_owner_id      = tonumber(data.github_user.owner.id)

  depends_on = [module.services]
}

module "project" {
  source = "../../modules/project"

  environment  = module.file.environment
  project_id   = module.file.project_id
  region       = module.file.region
  state_bucket = module.file.state_bucket
  registry = {
    location      = module.file.registry.location
    repository_id = module.file.registry.repository_id
  }
  network = {
    name       = module.file.vpc.network
    subnetwork = module.file.vpc.subnetwork
  }
  workload_identity_pool     = module.identity.workload_identity_pool
  plan_service_account_email = module.identity.plan_service_account_email
  # Nothing is promoted from prod, and builds land in dev.
  registry_readers = {}

  depends_on = [module.services]
}
