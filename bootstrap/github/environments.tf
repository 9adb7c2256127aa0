# GitHub Environments. dev, staging and prod: deploy.yml's deploy job runs in the one
# named after the environment it applies, from main only, and only there may it use
# that environment's deploy identity (its token's env_ref is ENV@refs/heads/main).
# fresh-plan: a deploy job asks a person to approve a plan made at deploy time that
# differs from the one reviewed on the PR by running a job in it; it has no secrets and
# no variables, so approving it grants nothing but the go-ahead.

locals {
  reviewers = {
    prod         = var.prod_reviewers
    "fresh-plan" = coalesce(var.fresh_plan_reviewers, var.prod_reviewers)
  }
  # Every Environment, with whether a person must approve each job in it.
  environments = merge(
    { for env in local.deploy_environments : env => contains(keys(local.reviewers), env) },
    { "fresh-plan" = true },
  )
  reviewer_users = toset(flatten([for r in values(local.reviewers) : r.users]))
  reviewer_teams = toset(flatten([for r in values(local.reviewers) : r.teams]))
}

# Required reviewers are given to GitHub as numeric ids; the variables hold names.
data "github_user" "reviewer" {
  for_each = local.reviewer_users
  username = each.key
}

data "github_team" "reviewer" {
  for_each     = local.reviewer_teams
  slug         = each.key
  summary_only = true
}

resource "github_repository_environment" "this" {
  for_each = local.environments

  repository  = github_repository.this.name
  environment = each.key
  # Nobody skips the reviewers, administrators included.
  can_admins_bypass = false
  # Whoever started the run (merged the PR) cannot approve it alone.
  prevent_self_review = each.value

  dynamic "reviewers" {
    for_each = each.value ? [local.reviewers[each.key]] : []
    content {
      users = [for login in reviewers.value.users : tonumber(data.github_user.reviewer[login].id)]
      teams = [for slug in reviewers.value.teams : tonumber(data.github_team.reviewer[slug].id)]
    }
  }

  # Deployment branch policy: the branches listed below (main) only.
  deployment_branch_policy {
    protected_branches     = false
    custom_branch_policies = true
  }
}

resource "github_repository_environment_deployment_policy" "main_only" {
  for_each = github_repository_environment.this

  repository     = github_repository.this.name
  environment    = each.value.environment
  branch_pattern = "main"
}
