# dev's project: where every build lands first. Applied last (bootstrap/README.md,
# "Order"): it binds its deploy identity to the GitHub pool prod's root made, lets the
# build identity push here, and lets staging's deploy identity read its registry
# (staging is promoted from dev). Everything project-specific comes from
# environments/dev.yaml.

module "file" {
  source = "../../modules/environment-file"
  path   = "${path.root}/../../../environments/dev.yaml"
}

# prod: the identity pool's home.
module "prod_file" {
  source = "../../modules/environment-file"
  path   = "${path.root}/../../../environments/prod.yaml"
}

# staging: the environment promoted from this one.
module "staging_file" {
  source = "../../modules/environment-file"
  path   = "${path.root}/../../../environments/staging.yaml"
}

data "terraform_remote_state" "prod" {
  backend = "gcs"
  config = {
    bucket = module.prod_file.state_bucket
    prefix = "bootstrap/gcp"
  }
}

data "terraform_remote_state" "staging" {
  backend = "gcs"
  config = {
    bucket = module.staging_file.state_bucket
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
  # build.yml pushes every new image here (TARGET_ENV: dev).
  build_service_account_email = data.terraform_remote_state.prod.outputs.build_service_account_email
  # staging is promoted from dev: its deploy identity copies the images from here.
  registry_readers = {
    staging = data.terraform_remote_state.staging.outputs.deploy_member
  }

  depends_on = [module.services]
}
