terraform {
  # What ci.yml and the workflows run; bootstrap/README.md says to install the same.
  required_version = ">= 1.9"

  # The repository side's state, in prod's state bucket beside prod's bootstrap state
  # (prefix bootstrap/gcp), which it reads. Applied after the three GCP roots.
  backend "gcs" {
    bucket = "gtfs-gitops-prod-tfstate"
    prefix = "bootstrap/github"
  }

  # Pinned exactly: the schema tools/provider_schema.py checks is this version's (the
  # @cdktf/provider-github bindings), and .terraform.lock.hcl holds its hashes.
  required_providers {
    github = {
      source  = "integrations/github"
      version = "6.9.0"
    }
  }
}

# A repository administrator's token (GITHUB_TOKEN=$(gh auth token)): environments,
# rulesets, settings and Actions variables need admin on the repository.
provider "github" {
  owner = var.owner
}
