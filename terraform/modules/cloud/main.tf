# Cloud resources for one environment: a KMS key, the lake bucket (versioned, encrypted, private,
# replicated, logged, lifecycle-managed), PostgreSQL for the warehouse, MLflow and Airflow, the
# secrets the workloads read through the External Secrets Operator, and one IAM role per workload
# (IRSA) holding only what it needs.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name = "${var.name_prefix}-${var.environment}"
  tags = {
    project     = "driftwood"
    environment = var.environment
    managed-by  = "terraform"
  }
  secret_names = [
    "pii-key", "api-users", "warehouse-url", "mlflow-db-url", "airflow-db-password",
    "mlflow-tracking-token", "ingest-alert-webhook",
  ]
}

# ---- encryption key ---------------------------------------------------------------------------------

data "aws_iam_policy_document" "kms" {
  # The account-root statement is AWS's default key policy: it delegates access to IAM policies (the
  # roles below grant kms:Decrypt on this key only). Without it the key could become unmanageable.
  #checkov:skip=CKV_AWS_111:key policies are resource policies; "*" means this key only
  #checkov:skip=CKV_AWS_356:key policies are resource policies; "*" means this key only
  #checkov:skip=CKV_AWS_109:account-root administration is required so the key stays manageable
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${local.name}: lake, database, secrets and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

# ---- the lake ---------------------------------------------------------------------------------------

resource "aws_s3_bucket" "lake" {
  bucket = "${local.name}-lake-${data.aws_caller_identity.current.account_id}"
  tags   = local.tags
}

resource "aws_s3_bucket_versioning" "lake" {
  bucket = aws_s3_bucket.lake.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_logging" "lake" {
  bucket        = aws_s3_bucket.lake.id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${aws_s3_bucket.lake.id}/"
}

# Raw files hold PII until ingest tokenises it: they expire, and old versions (which `driftwood forget`
# leaves behind when it rewrites a file) are removed after a short grace period.
resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    id     = "raw-retention"
    status = "Enabled"
    filter {
      prefix = "raw/"
    }
    expiration {
      days = var.raw_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  rule {
    id     = "noncurrent-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_notification" "lake" {
  bucket = aws_s3_bucket.lake.id
  topic {
    topic_arn     = var.alarm_topic_arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "raw/"
  }
}

data "aws_iam_policy_document" "replication_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "replication" {
  name               = "${local.name}-lake-replication"
  assume_role_policy = data.aws_iam_policy_document.replication_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "replication" {
  statement {
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
  }
  statement {
    actions   = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"]
    resources = ["${aws_s3_bucket.lake.arn}/*"]
  }
  statement {
    actions   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
    resources = ["${var.replica_bucket_arn}/*"]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "replication" {
  name   = "replication"
  role   = aws_iam_role.replication.id
  policy = data.aws_iam_policy_document.replication.json
}

resource "aws_s3_bucket_replication_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  role   = aws_iam_role.replication.arn
  rule {
    id     = "disaster-recovery"
    status = "Enabled"
    filter {}
    # Deletions replicate too, so an erased customer does not survive in the replica.
    delete_marker_replication {
      status = "Enabled"
    }
    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }
    destination {
      bucket        = var.replica_bucket_arn
      storage_class = "STANDARD_IA"
      encryption_configuration {
        replica_kms_key_id = aws_kms_key.this.arn
      }
    }
  }
  depends_on = [aws_s3_bucket_versioning.lake]
}

# ---- PostgreSQL ---------------------------------------------------------------------------------------

resource "aws_db_subnet_group" "this" {
  name       = local.name
  subnet_ids = var.database_subnet_ids
  tags       = local.tags
}

resource "aws_security_group" "db" {
  name        = "${local.name}-postgres"
  description = "PostgreSQL for ${local.name}: reachable from the cluster nodes only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "db_from_cluster" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the Kubernetes nodes"
  referenced_security_group_id = var.cluster_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_db_parameter_group" "this" {
  name   = "${local.name}-postgres16"
  family = "postgres16"
  tags   = local.tags
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  parameter {
    name         = "rds.force_ssl"
    value        = "1"
    apply_method = "pending-reboot"
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name = "${local.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier                            = local.name
  engine                                = "postgres"
  engine_version                        = "16.6"
  instance_class                        = var.db_instance_class
  allocated_storage                     = var.db_allocated_storage_gb
  max_allocated_storage                 = var.db_allocated_storage_gb * 4
  storage_encrypted                     = true
  kms_key_id                            = aws_kms_key.this.arn
  username                              = "driftwood_admin"
  manage_master_user_password           = true
  master_user_secret_kms_key_id         = aws_kms_key.this.arn
  iam_database_authentication_enabled   = true
  db_subnet_group_name                  = aws_db_subnet_group.this.name
  vpc_security_group_ids                = [aws_security_group.db.id]
  parameter_group_name                  = aws_db_parameter_group.this.name
  publicly_accessible                   = false
  multi_az                              = var.db_multi_az
  backup_retention_period               = var.backup_retention_days
  copy_tags_to_snapshot                 = true
  deletion_protection                   = true
  skip_final_snapshot                   = false
  final_snapshot_identifier             = "${local.name}-final"
  auto_minor_version_upgrade            = true
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.this.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  tags                                  = local.tags
}

# ---- secrets (values are set out of band: `aws secretsmanager put-secret-value`, never in Terraform) ----

resource "aws_secretsmanager_secret" "this" {
  # Rotation: the PII key cannot rotate on a timer (every token would change and joins with history
  # would break: it is rotated by re-tokenising, docs/security.md); the passwords rotate by the
  # runbook in docs/security.md, as no rotation Lambda is provisioned by this module.
  #checkov:skip=CKV2_AWS_57:rotation is a documented runbook (PII key must not rotate on a timer)
  for_each                = toset(local.secret_names)
  name                    = "${var.name_prefix}/${var.environment}/${each.key}"
  description             = "Driftwood ${var.environment}: ${each.key}"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
  tags                    = local.tags
}

# ---- IAM roles for the workloads' service accounts (IRSA) --------------------------------------------

data "aws_iam_policy_document" "irsa" {
  for_each = toset(["tasks", "api", "mlflow"])
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:sub"
      values   = ["system:serviceaccount:${var.namespace}:driftwood-${each.key}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "workload" {
  for_each           = data.aws_iam_policy_document.irsa
  name               = "${local.name}-${each.key}"
  assume_role_policy = each.value.json
  tags               = local.tags
}

# Steps read and write the lake and read their secrets.
data "aws_iam_policy_document" "tasks" {
  statement {
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
  }
  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.lake.arn}/*"]
  }
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [
      for k in ["pii-key", "warehouse-url", "mlflow-tracking-token", "ingest-alert-webhook"] :
      aws_secretsmanager_secret.this[k].arn
    ]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

# The API only reads: its secrets, and the lake prefix where it logs predictions (write).
data "aws_iam_policy_document" "api" {
  statement {
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.lake.arn}/predictions/*"]
  }
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [for k in ["pii-key", "api-users"] : aws_secretsmanager_secret.this[k].arn]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

# MLflow keeps run and model artifacts under the lake's mlflow/ prefix and reads its database URL.
data "aws_iam_policy_document" "mlflow" {
  statement {
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["mlflow/*"]
    }
  }
  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.lake.arn}/mlflow/*"]
  }
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.this["mlflow-db-url"].arn]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "mlflow" {
  name   = "driftwood-mlflow"
  role   = aws_iam_role.workload["mlflow"].id
  policy = data.aws_iam_policy_document.mlflow.json
}

resource "aws_iam_role_policy" "tasks" {
  name   = "driftwood-tasks"
  role   = aws_iam_role.workload["tasks"].id
  policy = data.aws_iam_policy_document.tasks.json
}

resource "aws_iam_role_policy" "api" {
  name   = "driftwood-api"
  role   = aws_iam_role.workload["api"].id
  policy = data.aws_iam_policy_document.api.json
}
