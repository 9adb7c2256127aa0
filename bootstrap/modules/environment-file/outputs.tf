output "environment" {
  description = "Environment name: the file's name without .yaml, e.g. dev."
  value       = local.name
}

output "project_id" {
  description = "GCP project of the environment (the file's `project`)."
  value       = local.file.project

  precondition {
    condition     = try(local.file.platform, "") == "cloudrun"
    error_message = "${var.path}: platform: bootstrap prepares cloud environments only (platform: cloudrun)."
  }
}

output "region" {
  description = "Region of the services (the file's `region`), e.g. europe-west1."
  value       = local.file.region
}

output "registry" {
  description = "The file's `registry` split into {location, project, repository_id}."
  value       = local.registry_parts

  precondition {
    condition     = local.registry_parts != null
    error_message = "${var.path}: registry: must be LOCATION-docker.pkg.dev/PROJECT/REPOSITORY."
  }
  precondition {
    condition     = try(local.registry_parts.project, "") == local.file.project
    error_message = "${var.path}: registry: must be in the environment's own project (${local.file.project})."
  }
  precondition {
    condition     = try(local.registry_parts.location, "") == local.file.region
    error_message = "${var.path}: registry: must be in the environment's region (${local.file.region}), beside the services that pull from it."
  }
}

output "state_bucket" {
  description = "Name of the bucket holding the stack's and bootstrap's state (the file's `state_bucket`)."
  value       = local.file.state_bucket
}

output "vpc" {
  description = "The one VPC the services egress into, as {network, subnetwork} (every service's `vpc`)."
  value       = length(local.vpcs) == 1 ? local.vpcs[0] : null

  precondition {
    condition     = length(local.vpcs) == 1
    error_message = "${var.path}: services.*.vpc: every service must name the same network and subnetwork (bootstrap creates one of each per project); found ${length(local.vpcs)}."
  }
}

output "promotion_source" {
  description = "The environment this one is promoted from (the file's `promotion.from`), e.g. dev for staging."
  value       = try(local.file.promotion.from, null)
}
