# Reads one environment file (environments/ENV.yaml) and hands bootstrap the values it
# shares with the stack: the project, the region, the registry, the state bucket and the
# VPC. Bootstrap takes them from the file instead of a second copy typed by hand, so the
# project bootstrap prepares is, by construction, the one envctl renders the stack into.
locals {
  file = yamldecode(file(var.path))
  name = trimsuffix(basename(var.path), ".yaml")

  # LOCATION-docker.pkg.dev/PROJECT/REPOSITORY, as the file's `registry` writes it.
  registry_parts = try(
    regex("^(?P<location>[a-z]+-[a-z]+[0-9]+)-docker\\.pkg\\.dev/(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])/(?P<repository_id>[a-z][a-z0-9-]{0,62})$", local.file.registry),
    null,
  )

  # Every service's `vpc` names the network and subnetwork it egresses into; bootstrap
  # creates exactly one of each per project, so the services must agree on them.
  vpcs = distinct([
    for name, svc in try(local.file.services, {}) : {
      network    = svc.vpc.network
      subnetwork = svc.vpc.subnetwork
    } if try(svc.vpc, null) != null
  ])
}
