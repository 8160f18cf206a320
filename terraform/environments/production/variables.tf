variable "aws_region" {
  description = "AWS region of the environment."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster the namespace lives in."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster and the database."
  type        = string
}

variable "database_subnet_ids" {
  description = "Private subnets for PostgreSQL."
  type        = list(string)
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider."
  type        = string
}

variable "db_instance_class" {
  description = "PostgreSQL instance class."
  type        = string
}

variable "db_multi_az" {
  description = "PostgreSQL standby in a second zone."
  type        = bool
}

variable "backup_retention_days" {
  description = "Days of PostgreSQL backups."
  type        = number
}

variable "raw_retention_days" {
  description = "Days raw (PII-bearing) landing files are kept."
  type        = number
}

variable "replica_bucket_arn" {
  description = "Cross-region replica bucket of the lake."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket for S3 access logs."
  type        = string
}

variable "alarm_topic_arn" {
  description = "SNS topic for lake events and alarms."
  type        = string
}

variable "image_registry" {
  description = "Registry and owner of the images."
  type        = string
}

variable "image_digests" {
  description = "Image digests to run: serving (stable), serving_canary, tasks. Set by the release workflow."
  type        = map(string)
}

variable "model_name" {
  description = "Registered model served."
  type        = string
  default     = "churn"
}

variable "model_version" {
  description = "The registry's champion at deploy time (set by the release workflow)."
  type        = string
}

variable "mlflow_tracking_uri" {
  description = "MLflow server URL seen from the cluster."
  type        = string
}

variable "api_replicas" {
  description = "Minimum API replicas."
  type        = number
}

variable "api_max_replicas" {
  description = "Maximum API replicas."
  type        = number
}

variable "canary_weight" {
  description = "Percent of traffic to the canary (the release workflow steps 10, 50, 100, then 0)."
  type        = number
  default     = 0
}

variable "api_host" {
  description = "Public host name of the API."
  type        = string
}
