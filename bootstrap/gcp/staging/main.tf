# staging's project. Applied after prod (bootstrap/README.md, "Order"): it binds its
# deploy identity to the GitHub pool prod's root made, and lets prod's deploy identity
# read its registry (prod is promoted from staging). Everything project-specific comes
# from environments/staging.yaml.

module "file" {
  source = "../../modules/environment-file"
  path   = "${path.root}/../../../environments/staging.yaml"
}

# prod: the identity pool's home, and the environment promoted from this one.
module "prod_file" {
  source = "../../modules/environment-file"
  path   = "${path.root}/../../../environments/prod.yaml"
}

data "terraform_remote_state" "prod" {
  backend = "gcs"
  config = {
    bucket = module.prod_file.state_bucket
    prefix = "bootstrap/gcp"
  }
}

module "services" {
  source     = "../../modules/project-services"
  project_id = module.file.project_id
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
  workload_identity_pool     = data.terraform_remote_state.prod.outputs.workload_identity_pool
  plan_service_account_email = data.terraform_remote_state.prod.outputs.plan_service_account_email
  # prod is promoted from staging: its deploy identity copies the images from here.
  registry_readers = {
    prod = data.terraform_remote_state.prod.outputs.deploy_member
  }

  depends_on = [module.services]
}
