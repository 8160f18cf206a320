# The staging environment: cloud resources and the Kubernetes namespace, wired together.
#   terraform init && terraform plan -var-file=staging.tfvars
# The release workflow applies this with image digests and the champion's version (docs/deployment.md).

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.35"
    }
  }
  # State: versioned, encrypted bucket with a lock table, created once per account (not by this code).
  backend "s3" {
    bucket         = "driftwood-terraform-state"
    key            = "driftwood/staging.tfstate"
    region         = "eu-west-1"
    encrypt        = true
    dynamodb_table = "driftwood-terraform-locks"
  }
}

provider "aws" {
  region = var.aws_region
  default_tags {
    tags = { project = "driftwood", environment = "staging" }
  }
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

data "aws_eks_cluster_auth" "this" {
  name = var.cluster_name
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
  token                  = data.aws_eks_cluster_auth.this.token
}

module "cloud" {
  source                    = "../../modules/cloud"
  environment               = "staging"
  vpc_id                    = var.vpc_id
  database_subnet_ids       = var.database_subnet_ids
  cluster_security_group_id = data.aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  oidc_provider_arn         = var.oidc_provider_arn
  oidc_provider_url         = replace(data.aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
  db_instance_class         = var.db_instance_class
  db_multi_az               = var.db_multi_az
  backup_retention_days     = var.backup_retention_days
  raw_retention_days        = var.raw_retention_days
  replica_bucket_arn        = var.replica_bucket_arn
  access_log_bucket         = var.access_log_bucket
  alarm_topic_arn           = var.alarm_topic_arn
  namespace                 = "driftwood-staging"
}

module "app" {
  source                 = "../../modules/k8s-app"
  environment            = "staging"
  image_registry         = var.image_registry
  image_digests          = var.image_digests
  model_name             = var.model_name
  model_version          = var.model_version
  mlflow_tracking_uri    = var.mlflow_tracking_uri
  api_replicas           = var.api_replicas
  api_max_replicas       = var.api_max_replicas
  canary_weight          = var.canary_weight
  api_host               = var.api_host
  tasks_role_arn         = module.cloud.tasks_role_arn
  api_role_arn           = module.cloud.api_role_arn
  mlflow_role_arn        = module.cloud.mlflow_role_arn
  lake_bucket            = module.cloud.lake_bucket
  secrets_manager_prefix = module.cloud.secrets_manager_prefix
  aws_region             = var.aws_region
}

output "namespace" {
  description = "Kubernetes namespace of this environment."
  value       = module.app.namespace
}

output "image_digests" {
  description = "Image digests deployed (read by the release job before a canary)."
  value       = module.app.image_digests
}

output "model_version" {
  description = "Champion version recorded on the deployment."
  value       = module.app.model_version
}

output "lake_bucket" {
  description = "The lake bucket."
  value       = module.cloud.lake_bucket
}
