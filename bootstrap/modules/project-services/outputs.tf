output "services" {
  description = "The enabled APIs, e.g. run.googleapis.com, each with why it is needed."
  value       = { for api, why in local.apis : google_project_service.apis[api].service => why }
}
