output "namespace" {
  description = "The environment's namespace."
  value       = kubernetes_namespace_v1.this.metadata[0].name
}

output "image_digests" {
  description = "The image digests now deployed (the release job reads the stable one before a canary)."
  value       = var.image_digests
}

output "model_version" {
  description = "The champion version recorded on this deployment."
  value       = var.model_version
}

output "tasks_service_account" {
  description = "Service account for the pipeline step pods (KubernetesPodOperator)."
  value       = kubernetes_service_account_v1.tasks.metadata[0].name
}
