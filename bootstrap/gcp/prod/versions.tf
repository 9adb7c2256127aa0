terraform {
  # What ci.yml and the workflows run; bootstrap/README.md says to install the same.
  required_version = ">= 1.9"

  # Bootstrap's own state, beside the stack's (prefix environments/prod) in the bucket
  # this root creates. The first apply runs with local state (backend_override.tf) and
  # then migrates here: bootstrap/README.md. tests/bootstrap checks that the bucket is
  # environments/prod.yaml's state_bucket.
  backend "gcs" {
    bucket = "gtfs-gitops-prod-tfstate"
    prefix = "bootstrap/gcp"
  }

  # Pinned exactly (modules keep ranges): the schema tools/provider_schema.py checks is
  # this version's, and .terraform.lock.hcl (providers-lock.yml) holds its hashes.
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
    github = {
      source  = "integrations/github"
      version = "6.9.0"
    }
  }
}

provider "google" {
  project = module.file.project_id
  region  = module.file.region
  # A person's credentials (gcloud auth application-default login) bill API calls to
  # this project rather than to whatever quota project their account defaults to.
  billing_project       = module.file.project_id
  user_project_override = true
  default_labels = {
    environment = module.file.environment
    managed-by  = "bootstrap"
  }
}

# Read-only here: the repository's numeric ids for the pool's attribute condition
# (GITHUB_TOKEN from `gh auth token`, bootstrap/README.md).
provider "github" {
  owner = split("/", var.github_repository)[0]
}
