output "lake_bucket" {
  description = "The lake bucket (DRIFTWOOD_LAKE_URI = s3://<this>)."
  value       = aws_s3_bucket.lake.bucket
}

output "db_endpoint" {
  description = "PostgreSQL endpoint (host:port)."
  value       = aws_db_instance.this.endpoint
}

output "tasks_role_arn" {
  description = "IAM role of the pipeline steps' service account."
  value       = aws_iam_role.workload["tasks"].arn
}

output "api_role_arn" {
  description = "IAM role of the API's service account."
  value       = aws_iam_role.workload["api"].arn
}

output "secrets_manager_prefix" {
  description = "Prefix of this environment's secrets in AWS Secrets Manager."
  value       = "${var.name_prefix}/${var.environment}"
}

output "kms_key_arn" {
  description = "KMS key encrypting the lake, the database, the secrets and the logs."
  value       = aws_kms_key.this.arn
}

output "mlflow_role_arn" {
  description = "IAM role of the MLflow server's service account."
  value       = aws_iam_role.workload["mlflow"].arn
}
