variable "environment" {
  description = "Environment name (staging | production); also the namespace suffix."
  type        = string
  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "image_registry" {
  description = "Registry and owner of the Driftwood images, e.g. ghcr.io/driftwood-mlops."
  type        = string
}

variable "image_digests" {
  description = "Digest (sha256:…) per image (serving, tasks, mlflow, serving_canary) — deployments run images by digest, never by mutable tag."
  type        = map(string)
  validation {
    condition     = alltrue([for d in values(var.image_digests) : can(regex("^sha256:[0-9a-f]{64}$", d))])
    error_message = "image_digests values must look like sha256:<64 hex>."
  }
}

variable "model_name" {
  description = "Registered model the API serves."
  type        = string
  default     = "churn"
}

variable "model_version" {
  description = "The registry's champion version at deploy time, recorded on the pods (the API follows the alias)."
  type        = string
}

variable "mlflow_tracking_uri" {
  description = "MLflow tracking server URL reachable from the namespace."
  type        = string
}

variable "api_replicas" {
  description = "Minimum replicas of the stable API (the HPA scales from here)."
  type        = number
  default     = 2
}

variable "api_max_replicas" {
  description = "Maximum replicas of the stable API."
  type        = number
  default     = 10
}

variable "canary_weight" {
  description = "Percent of API traffic sent to the canary (0 = no canary)."
  type        = number
  default     = 0
  validation {
    condition     = var.canary_weight >= 0 && var.canary_weight <= 100
    error_message = "canary_weight must be between 0 and 100."
  }
}

variable "api_host" {
  description = "Public host name of the API (Ingress)."
  type        = string
}

variable "tasks_role_arn" {
  description = "IAM role the pipeline steps' service account assumes (IRSA)."
  type        = string
}

variable "api_role_arn" {
  description = "IAM role the API's service account assumes (IRSA)."
  type        = string
}

variable "secrets_manager_prefix" {
  description = "Prefix of this environment's secrets in AWS Secrets Manager, e.g. driftwood/staging."
  type        = string
}

variable "aws_region" {
  description = "Region of AWS Secrets Manager."
  type        = string
}

variable "monitoring_namespace" {
  description = "Namespace whose pods (Prometheus) may scrape /metrics."
  type        = string
  default     = "monitoring"
}

variable "ingress_namespace" {
  description = "Namespace of the ingress controller, the only source of inbound API traffic."
  type        = string
  default     = "ingress-nginx"
}

variable "mlflow_role_arn" {
  description = "IAM role the MLflow server's service account assumes (IRSA)."
  type        = string
}

variable "lake_bucket" {
  description = "The lake bucket; MLflow stores artifacts under its mlflow/ prefix."
  type        = string
}
