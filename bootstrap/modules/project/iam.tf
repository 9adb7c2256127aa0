# The environment's deploy identity (DEPLOY_SA of GitHub Environment ENV) and what the
# read-only plan identity may see here. ADR 0025; the table in .github/workflows/README.md
# lists the same roles.

resource "google_service_account" "deploy" {
  project      = var.project_id
  account_id   = "deploy-${var.environment}"
  display_name = "deploy ${var.environment} (GitHub Environment ${var.environment} on main)"
  description  = "Applies modules/stack for ${var.environment} from deploy.yml; impersonable only by a job in GitHub Environment ${var.environment} on refs/heads/main."
}

# Who may impersonate it: ONE attribute, env_ref = environment + "@" + ref, so a single
# principalSet says "GitHub Environment ENV on main". Two bindings (environment/ENV and
# ref/refs/heads/main) would be OR, not AND: build.yml on main would match the second.
resource "google_service_account_iam_member" "deploy_workload_identity" {
  service_account_id = google_service_account.deploy.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${var.workload_identity_pool}/attribute.env_ref/${var.environment}@refs/heads/main"
}

locals {
  # Project roles of the deploy identity: only what applying modules/stack needs.
  deploy_roles = {
    # Create and update the Cloud Run services and set who may invoke them
    # (modules/invoker-iam: run.developer cannot set IAM policies). It includes
    # run.routes.invoke, which is what lets the smoke check, run with this identity's ID
    # token, call the console on the very first deploy: granted here, long before the
    # console exists, so no per-service binding has to be made and propagate first.
    "roles/run.admin" = "services, their IAM policies, and the smoke check's invoke"
    # Create the services' runtime service accounts (modules/service-identity).
    "roles/iam.serviceAccountAdmin" = "create the services' runtime service accounts"
    # Deploy a revision that runs as those accounts (iam.serviceAccounts.actAs).
    "roles/iam.serviceAccountUser" = "run revisions as the services' accounts"
    # The run store: the Cloud SQL instance, its database and IAM user (cloud-sql-postgres).
    "roles/cloudsql.admin" = "the run store's Cloud SQL instance, database and IAM user"
    # The run store's bucket and its IAM (storage-bucket), and this project's state.
    "roles/storage.admin" = "the run store's bucket and its IAM, and the state objects"
    # Read the VPC the Cloud SQL instance's private IP and the services' egress name.
    "roles/compute.networkViewer" = "read the VPC and subnetwork the stack attaches to"
    # modules/monitoring's dashboard, alert policies and notification channels, and the
    # metrics check's reads of the new revision's error ratio and p95 (includes viewer).
    "roles/monitoring.editor" = "the dashboard, alert policies, channels, and the metrics check"
  }

  # The only roles the stack grants at project level: telemetry for each service account
  # (modules/service-identity) and Cloud SQL connect/login narrowed to one instance
  # (modules/cloud-sql-postgres/iam.tf). The deploy identity may grant these and nothing
  # else, so it cannot make itself (or anyone) owner.
  grantable_roles = [
    "roles/cloudtrace.agent",
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/telemetry.tracesWriter",
    "roles/telemetry.metricsWriter",
    "roles/cloudsql.client",
    "roles/cloudsql.instanceUser",
  ]
}

resource "google_project_iam_member" "deploy" {
  #checkov:skip=CKV_GCP_41:the stack deploys revisions that run as the services' own accounts, which it creates in the same apply, so actAs cannot be granted on each account beforehand
  #checkov:skip=CKV_GCP_49:the stack creates the services' runtime accounts (modules/service-identity) and deploys revisions as them: managing and acting as service accounts is its job
  for_each = local.deploy_roles

  project = var.project_id
  role    = each.key
  member  = google_service_account.deploy.member
}

# Project IAM for the stack's project-level grants, limited by an IAM condition to the
# roles above (iam.googleapis.com/modifiedGrantsByRole).
resource "google_project_iam_member" "deploy_grants" {
  project = var.project_id
  role    = "roles/resourcemanager.projectIamAdmin"
  member  = google_service_account.deploy.member

  condition {
    title       = "only the stack's roles"
    description = "May grant and revoke only the roles modules/stack grants: telemetry and Cloud SQL connect/login."
    expression  = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([${join(", ", [for role in local.grantable_roles : "'${role}'"])}])"
  }
}

# modules/secret-access grants each service read on the secrets it references. No
# predefined role sets a secret's IAM policy without also reading its value
# (secretmanager.admin includes versions.access), so this custom role does only that.
resource "google_project_iam_custom_role" "secret_access_granter" {
  project     = var.project_id
  role_id     = "secretAccessGranter"
  title       = "Secret access granter"
  description = "Sees secrets and sets who may read them, never reads a value: what modules/secret-access needs."
  permissions = [
    "secretmanager.secrets.get",
    "secretmanager.secrets.getIamPolicy",
    "secretmanager.secrets.setIamPolicy",
  ]
}

resource "google_project_iam_member" "deploy_secret_access" {
  project = var.project_id
  role    = google_project_iam_custom_role.secret_access_granter.name
  member  = google_service_account.deploy.member
}

# The read-only plan identity (PLAN_SA: plan.yml on PRs, drift.yml, and deploy.yml's
# plan step) may read everything `tofu plan -lock=false` refreshes here, and the state.
locals {
  # Read-only predefined roles, no basic role: each covers what the stack refreshes.
  plan_roles = {
    "roles/browser"                  = "the project and its number (data.google_project)"
    "roles/run.viewer"               = "the Cloud Run services and their IAM policies"
    "roles/iam.serviceAccountViewer" = "the services' runtime service accounts"
    "roles/cloudsql.viewer"          = "the run store's instance, database and users"
    "roles/storage.bucketViewer"     = "the run store's bucket (metadata, not objects)"
    "roles/secretmanager.viewer"     = "the secrets' metadata (never their values)"
    "roles/artifactregistry.reader"  = "the registry the stack reads"
    "roles/compute.networkViewer"    = "the VPC and subnetwork the services attach to"
    "roles/monitoring.viewer"        = "the dashboard, alert policies and notification channels"
    # Every IAM policy the stack's *_iam_member resources refresh (services, service
    # accounts, secrets, buckets, the project); no secret values, no object data.
    "roles/iam.securityReviewer" = "the IAM policies the stack refreshes"
  }
}

resource "google_project_iam_member" "plan" {
  for_each = local.plan_roles

  project = var.project_id
  role    = each.key
  member  = "serviceAccount:${var.plan_service_account_email}"
}

# Read (get, list) the state objects: -lock=false never writes a lock file, so read is
# all a plan needs from the backend.
resource "google_storage_bucket_iam_member" "plan_state" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${var.plan_service_account_email}"
}
