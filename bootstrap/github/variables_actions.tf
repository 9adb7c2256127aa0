# The Actions variables the workflows read (`vars.NAME`), every value from the GCP
# roots' outputs except the App id, which GitHub assigns. tests/bootstrap checks that
# every `vars.NAME` in .github/workflows is set here. The App's private key is a secret
# (RELEASE_APP_PRIVATE_KEY) set with `gh secret set`, never held in state.

locals {
  identity = data.terraform_remote_state.gcp[local.identity_environment].outputs

  # Repository variables: the jobs outside any Environment (build.yml, plan.yml,
  # drift.yml, promote.yml, rollback.yml) read these.
  repository_variables = {
    WIF_PROVIDER   = local.identity.workload_identity_provider
    BUILD_SA       = local.identity.build_service_account_email
    PLAN_SA        = local.identity.plan_service_account_email
    RELEASE_APP_ID = tostring(var.release_app_id)
  }

  # Environment variables of dev, staging and prod, by variable name => the output of
  # that environment's GCP root holding the value.
  environment_variables = {
    DEPLOY_SA = "deploy_service_account_email"
  }
}

resource "github_actions_variable" "repository" {
  for_each = local.repository_variables

  repository    = github_repository.this.name
  variable_name = each.key
  value         = each.value
}

resource "github_actions_environment_variable" "deploy" {
  for_each = {
    for pair in setproduct(local.deploy_environments, keys(local.environment_variables)) :
    "${pair[0]}/${pair[1]}" => { environment = pair[0], name = pair[1] }
  }

  repository    = github_repository.this.name
  environment   = github_repository_environment.this[each.value.environment].environment
  variable_name = each.value.name
  value         = data.terraform_remote_state.gcp[each.value.environment].outputs[local.environment_variables[each.value.name]]
}
