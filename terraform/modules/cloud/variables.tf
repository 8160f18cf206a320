variable "environment" {
  description = "Environment name (staging | production)."
  type        = string
  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name, e.g. driftwood."
  type        = string
  default     = "driftwood"
}

variable "vpc_id" {
  description = "VPC holding the cluster and the database."
  type        = string
}

variable "database_subnet_ids" {
  description = "Private subnets for the PostgreSQL instance (at least two availability zones)."
  type        = list(string)
}

variable "cluster_security_group_id" {
  description = "Security group of the Kubernetes nodes: the only source allowed to reach PostgreSQL."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's OIDC provider (IAM roles for service accounts)."
  type        = string
}

variable "oidc_provider_url" {
  description = "URL of the cluster's OIDC provider, without https://."
  type        = string
}

variable "db_instance_class" {
  description = "PostgreSQL instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage_gb" {
  description = "Initial PostgreSQL storage (grows automatically up to 4x)."
  type        = number
  default     = 50
}

variable "db_multi_az" {
  description = "Standby in a second availability zone."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated PostgreSQL backups (also the longest a forgotten customer survives in a backup)."
  type        = number
  default     = 14
}

variable "raw_retention_days" {
  description = "Days raw landing files (which hold PII before tokenisation) are kept in the lake."
  type        = number
  default     = 90
}

variable "replica_bucket_arn" {
  description = "Bucket in another region that receives a replica of the lake (disaster recovery)."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket that receives S3 server access logs."
  type        = string
}

variable "alarm_topic_arn" {
  description = "SNS topic notified of lake object events (and alarms)."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace whose service accounts may assume the roles."
  type        = string
}
