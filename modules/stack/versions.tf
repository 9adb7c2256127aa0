terraform {
  required_version = ">= 1.6"

  # One state per environment: `envctl render ENV --backend` prints the bucket and the
  # prefix environments/ENV, passed at init (tofu init -backend-config=FILE).
  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
}

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = var.labels
}
