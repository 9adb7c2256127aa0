locals {
  # The required status checks: every job of ci.yml, by the name it reports (its
  # `name:`). ci.yml has no `paths` filter, so each reports on every PR; plan.yml's jobs
  # cannot be required (a PR touching neither environments/ nor modules/ never runs
  # them, and would wait forever); a PR whose plan failed cannot deploy anyway, because
  # deploy.yml applies only a plan equal to the reviewed one. tests/bootstrap checks this
  # list against ci.yml.
  required_checks = [
    "ruff and mypy",
    "make test (with the container harness)",
    "envctl validate",
    "OpenTofu fmt, validate and lock files",
    "checkov over modules and bootstrap",
    "actionlint and zizmor",
    "buf lint and buf breaking",
  ]
  # The GitHub Actions app: only a check run reported by Actions satisfies a requirement.
  github_actions_app_id = 15368
}

# main: changed only through pull requests whose checks passed against the current main
# (so the plan a PR shows was made against the main it merges into), never force-pushed
# or deleted. Linear history backs the squash-only setting up.
resource "github_repository_ruleset" "main" {
  name        = "main"
  repository  = github_repository.this.name
  target      = "branch"
  enforcement = "active"

  conditions {
    ref_name {
      include = ["refs/heads/main"]
      exclude = []
    }
  }

  rules {
    deletion                = true
    non_fast_forward        = true
    required_linear_history = true

    pull_request {
      required_approving_review_count   = var.required_approvals
      dismiss_stale_reviews_on_push     = true
      require_last_push_approval        = true
      required_review_thread_resolution = true
    }

    required_status_checks {
      # "Require branches to be up to date before merging".
      strict_required_status_checks_policy = true

      dynamic "required_check" {
        for_each = local.required_checks
        content {
          context        = required_check.value
          integration_id = local.github_actions_app_id
        }
      }
    }
  }
}

# Deploy records (annotated tags deploy/ENV/TIME written by deploy.yml, ADR 0021): only
# the release App may create one. A ruleset's bypass covers all its rules, so creation
# is in this ruleset and update/deletion in the next, which nobody bypasses.
resource "github_repository_ruleset" "deploy_records_created_by_release_app" {
  name        = "deploy records: created by the release App only"
  repository  = github_repository.this.name
  target      = "tag"
  enforcement = "active"

  conditions {
    ref_name {
      include = ["refs/tags/deploy/**"]
      exclude = []
    }
  }

  bypass_actors {
    actor_id    = var.release_app_id
    actor_type  = "Integration"
    bypass_mode = "always"
  }

  rules {
    creation = true
  }
}

resource "github_repository_ruleset" "deploy_records_immutable" {
  name        = "deploy records: never moved or deleted"
  repository  = github_repository.this.name
  target      = "tag"
  enforcement = "active"

  conditions {
    ref_name {
      include = ["refs/tags/deploy/**"]
      exclude = []
    }
  }

  rules {
    update           = true
    deletion         = true
    non_fast_forward = true
  }
}
