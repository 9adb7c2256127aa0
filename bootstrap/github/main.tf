# The repository side of bootstrap: settings (squash merges only), the GitHub
# Environments the deploy jobs run in, the rulesets on main and on the deploy records,
# and the Actions variables the workflows read. Applied once by a repository
# administrator after the three GCP roots (bootstrap/README.md); every value the
# workflows read comes from those roots' state, none is typed here.

locals {
  # The environments with a deploy identity: every cloud environment file.
  deploy_environments = ["dev", "staging", "prod"]
  # The GCP root whose project holds the GitHub identity pool and the CI identities.
  identity_environment = "prod"
}

module "environment" {
  source   = "../modules/environment-file"
  for_each = toset(local.deploy_environments)
  path     = "${path.root}/../../environments/${each.key}.yaml"
}

# Each GCP root's outputs (bootstrap/gcp/ENV/outputs.tf), from its state in that
# environment's state bucket.
data "terraform_remote_state" "gcp" {
  for_each = module.environment

  backend = "gcs"
  config = {
    bucket = each.value.state_bucket
    prefix = "bootstrap/gcp"
  }
}

# The repository exists already (it holds this code): import it, then own the settings
# that matter. Every argument below is set on purpose; the first plan shows what differs.
import {
  to = github_repository.this
  id = var.repository
}

resource "github_repository" "this" {
  #checkov:skip=CKV_GIT_1:the repository's visibility is the owner's choice and is not changed here (visibility is left unset)
  name        = var.repository
  description = var.description

  # Squash merges only: one commit on main per pull request, so a release is one commit
  # of an environment file. envctl stays correct for merge commits and rebase merges.
  allow_squash_merge          = true
  allow_merge_commit          = false
  allow_rebase_merge          = false
  squash_merge_commit_title   = "PR_TITLE"
  squash_merge_commit_message = "PR_BODY"
  # "Update branch" on a PR: the ruleset requires branches to be up to date with main.
  allow_update_branch    = true
  delete_branch_on_merge = true
  allow_auto_merge       = false

  # drift.yml opens one issue per drifted environment.
  has_issues           = true
  has_projects         = false
  has_wiki             = false
  has_discussions      = false
  vulnerability_alerts = true

  # Never deleted by a destroy of this root.
  archive_on_destroy = true
  lifecycle {
    prevent_destroy = true
  }
}
