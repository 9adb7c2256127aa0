terraform {
  # removed blocks (main.tf) need OpenTofu 1.7; the workflows run 1.9.0.
  required_version = ">= 1.7"

  # One state per environment: `envctl render ENV --backend` prints the bucket and the
  # prefix environments/ENV, passed at init (tofu init -backend-config=FILE).
  backend "gcs" {}

  # Pinned exactly for apply (the modules keep ranges): a provider release between a
  # PR's plan and its merge must not change the applied plan. providers-lock.yml keeps
  # .terraform.lock.hcl's hashes for this version, the one tools/provider_schema.py checks.
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
  }
}

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = var.labels
}
