# Staging: one zone for the database, smaller instances, shorter retention. No secret here: secret
# values live in AWS Secrets Manager under driftwood/staging/* and are synced into the namespace.
aws_region            = "eu-west-1"
cluster_name          = "driftwood-nonprod"
vpc_id                = "vpc-0a1b2c3d4e5f60001"
database_subnet_ids   = ["subnet-0a1b2c3d4e5f60011", "subnet-0a1b2c3d4e5f60012"]
oidc_provider_arn     = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
db_instance_class     = "db.t4g.medium"
db_multi_az           = false
backup_retention_days = 7
raw_retention_days    = 30
replica_bucket_arn    = "arn:aws:s3:::driftwood-staging-lake-replica-111122223333"
access_log_bucket     = "driftwood-access-logs-111122223333"
alarm_topic_arn       = "arn:aws:sns:eu-west-1:111122223333:driftwood-staging-alarms"
image_registry        = "ghcr.io/driftwood-mlops"
mlflow_tracking_uri   = "http://driftwood-mlflow.driftwood-staging.svc.cluster.local:5000"
api_replicas          = 1
api_max_replicas      = 3
api_host              = "api.staging.driftwood.example"
# Placeholders for `terraform plan` by hand; the release workflow passes the real ones
# (TF_VAR_image_digests, TF_VAR_model_version).
image_digests = {
  serving = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
  tasks   = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
  mlflow  = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
}
model_version = "0"
