# Who in GitHub may act in Google Cloud: one Workload Identity pool with one GitHub OIDC
# provider, the build identity and the read-only plan identity. The deploy identities
# (one per environment, in their own projects) bind to this pool in
# bootstrap/modules/project. ADR 0025.
#
# It lives in the project whose owners are trusted most (prod): whoever administers the
# pool decides what a token's attributes say, and so who counts as "prod on main".

locals {
  issuer = "https://token.actions.githubusercontent.com"

  # CEL over the GitHub OIDC token's claims. env_ref is the one attribute a deploy
  # binding matches: "ENV@refs/heads/main" only for a job in GitHub Environment ENV
  # running on main. A job outside any Environment (build.yml, plan.yml, drift.yml) has
  # no `environment` claim: its env_ref is "@REF", which names no environment.
  attribute_mapping = {
    "google.subject"                = "assertion.sub"
    "attribute.repository_id"       = "assertion.repository_id"
    "attribute.repository_owner_id" = "assertion.repository_owner_id"
    "attribute.ref"                 = "assertion.ref"
    "attribute.env_ref"             = "(has(assertion.environment) ? assertion.environment : \"\") + \"@\" + assertion.ref"
    "attribute.job_workflow_ref"    = "assertion.job_workflow_ref"
  }

  # Tokens of this repository only, named by its numeric ids: a repository deleted and
  # re-created under the same name (or an owner renamed and the name taken over) gets
  # new ids, so its tokens are refused even though `repository` still matches.
  attribute_condition = "assertion.repository_id == \"${var.github_repository_id}\" && assertion.repository_owner_id == \"${var.github_owner_id}\""
}

resource "google_iam_workload_identity_pool" "github" {
  project                   = var.project_id
  workload_identity_pool_id = var.pool_id
  display_name              = "GitHub Actions"
  description               = "GitHub Actions jobs of ${var.github_repository} (repository id ${var.github_repository_id})."
}

resource "google_iam_workload_identity_pool_provider" "github" {
  #checkov:skip=CKV_GCP_125:the condition admits tokens by repository_id and repository_owner_id (numeric ids, which a re-created repository cannot take over); this check only recognises an assertion.sub name match
  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.github.workload_identity_pool_id
  workload_identity_pool_provider_id = var.provider_id
  display_name                       = "GitHub OIDC"
  description                        = "token.actions.githubusercontent.com, this repository's tokens only."
  attribute_mapping                  = local.attribute_mapping
  attribute_condition                = local.attribute_condition

  oidc {
    issuer_uri = local.issuer
  }
}

# BUILD_SA: pushes images into the first environment's registry (write on that one
# repository only, granted in its project; no project role anywhere).
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "ci-build"
  display_name = "build (build.yml on main)"
  description  = "Pushes service images tagged with the commit SHA; impersonable only by build.yml on refs/heads/main."
}

# Only build.yml, only on main: job_workflow_ref names the workflow file and the ref.
resource "google_service_account_iam_member" "build_workload_identity" {
  service_account_id = google_service_account.build.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/attribute.job_workflow_ref/${var.github_repository}/.github/workflows/build.yml@refs/heads/main"
}

# PLAN_SA: read-only (viewer, security reviewer and state read in each environment's
# project, granted there). Any job of this repository may use it, PRs included: that is
# how plan.yml shows a PR's plan, and nothing it holds can change anything.
resource "google_service_account" "plan" {
  project      = var.project_id
  account_id   = "ci-plan"
  display_name = "plan (read-only: plan.yml, drift.yml, deploy.yml's plan)"
  description  = "Reads every environment's resources and state for tofu plan -lock=false; changes nothing."
}

resource "google_service_account_iam_member" "plan_workload_identity" {
  service_account_id = google_service_account.plan.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/attribute.repository_id/${var.github_repository_id}"
}
