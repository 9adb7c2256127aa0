output "environments" {
  description = "The GitHub Environments, each with whether a person must approve its jobs."
  value       = local.environments
}

output "repository_variables" {
  description = "Names of the repository-level Actions variables set here."
  value       = sort(keys(local.repository_variables))
}

output "required_checks" {
  description = "The status checks main's ruleset requires (ci.yml's job names)."
  value       = local.required_checks
}
