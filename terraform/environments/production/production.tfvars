# Production: multi-AZ database, two API replicas minimum, longer backups. No secret here: secret
# values live in AWS Secrets Manager under driftwood/production/* and are synced into the namespace.
aws_region            = "eu-west-1"
cluster_name          = "driftwood-prod"
vpc_id                = "vpc-0a1b2c3d4e5f60002"
database_subnet_ids   = ["subnet-0a1b2c3d4e5f60021", "subnet-0a1b2c3d4e5f60022", "subnet-0a1b2c3d4e5f60023"]
oidc_provider_arn     = "arn:aws:iam::444455556666:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLEA1B2C3D4E5F60718293EXAMPLE"
db_instance_class     = "db.m7g.large"
db_multi_az           = true
backup_retention_days = 14
raw_retention_days    = 90
replica_bucket_arn    = "arn:aws:s3:::driftwood-production-lake-replica-444455556666"
access_log_bucket     = "driftwood-access-logs-444455556666"
alarm_topic_arn       = "arn:aws:sns:eu-west-1:444455556666:driftwood-production-alarms"
image_registry        = "ghcr.io/driftwood-mlops"
mlflow_tracking_uri   = "http://driftwood-mlflow.driftwood-production.svc.cluster.local:5000"
api_replicas          = 2
api_max_replicas      = 10
api_host              = "api.driftwood.example"
image_digests = {
  serving = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
  tasks   = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
  mlflow  = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
}
model_version = "0"
