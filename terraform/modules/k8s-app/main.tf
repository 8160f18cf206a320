# One environment's namespace: the prediction API (stable + canary Deployments behind one Service and
# a weighted canary Ingress), the pipeline steps' service account (Airflow's KubernetesPodOperator
# starts them here), least-privilege RBAC, default-deny NetworkPolicies, and secrets synced from AWS
# Secrets Manager by the External Secrets Operator (installed cluster-wide, not by this module).

locals {
  namespace = "driftwood-${var.environment}"
  labels = {
    "app.kubernetes.io/part-of"    = "driftwood"
    "app.kubernetes.io/managed-by" = "terraform"
    "driftwood.io/environment"     = var.environment
  }
  api_labels = merge(local.labels, { "app.kubernetes.io/name" = "driftwood-api" })
  tracks = {
    stable = { digest = var.image_digests["serving"], replicas = var.api_replicas }
    canary = { digest = lookup(var.image_digests, "serving_canary", var.image_digests["serving"]), replicas = var.canary_weight > 0 ? 1 : 0 }
  }
}

resource "kubernetes_namespace_v1" "this" {
  metadata {
    name = local.namespace
    labels = merge(local.labels, {
      # Pod Security Admission: only pods meeting the restricted profile are admitted.
      "pod-security.kubernetes.io/enforce" = "restricted"
      "pod-security.kubernetes.io/audit"   = "restricted"
      "pod-security.kubernetes.io/warn"    = "restricted"
    })
  }
}

# ---- identities -----------------------------------------------------------------------------------

resource "kubernetes_service_account_v1" "api" {
  metadata {
    name        = "driftwood-api"
    namespace   = kubernetes_namespace_v1.this.metadata[0].name
    labels      = local.labels
    annotations = { "eks.amazonaws.com/role-arn" = var.api_role_arn }
  }
  automount_service_account_token = false
}

resource "kubernetes_service_account_v1" "tasks" {
  metadata {
    name        = "driftwood-tasks"
    namespace   = kubernetes_namespace_v1.this.metadata[0].name
    labels      = local.labels
    annotations = { "eks.amazonaws.com/role-arn" = var.tasks_role_arn }
  }
  automount_service_account_token = false
}

resource "kubernetes_service_account_v1" "mlflow" {
  metadata {
    name        = "driftwood-mlflow"
    namespace   = kubernetes_namespace_v1.this.metadata[0].name
    labels      = local.labels
    annotations = { "eks.amazonaws.com/role-arn" = var.mlflow_role_arn }
  }
  automount_service_account_token = false
}

# Airflow's worker runs in this namespace's `driftwood-airflow` account and may only manage the step pods.
resource "kubernetes_service_account_v1" "airflow" {
  metadata {
    name      = "driftwood-airflow"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  automount_service_account_token = false
}

resource "kubernetes_role_v1" "pod_launcher" {
  metadata {
    name      = "driftwood-pod-launcher"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  rule {
    api_groups = [""]
    resources  = ["pods"]
    verbs      = ["create", "get", "list", "watch", "delete"]
  }
  rule {
    api_groups = [""]
    resources  = ["pods/log"]
    verbs      = ["get"]
  }
  rule {
    api_groups = [""]
    resources  = ["events"]
    verbs      = ["list"]
  }
}

resource "kubernetes_role_binding_v1" "pod_launcher" {
  metadata {
    name      = "driftwood-pod-launcher"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.pod_launcher.metadata[0].name
  }
  subject {
    kind      = "ServiceAccount"
    name      = kubernetes_service_account_v1.airflow.metadata[0].name
    namespace = kubernetes_namespace_v1.this.metadata[0].name
  }
}

# The API and the steps read only their own secrets; nothing else in the namespace.
resource "kubernetes_role_v1" "secret_reader" {
  for_each = {
    api    = kubernetes_service_account_v1.api.metadata[0].name
    tasks  = kubernetes_service_account_v1.tasks.metadata[0].name
    mlflow = kubernetes_service_account_v1.mlflow.metadata[0].name
  }
  metadata {
    name      = "driftwood-${each.key}-secrets"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  rule {
    api_groups     = [""]
    resources      = ["secrets"]
    resource_names = ["driftwood-${each.key}"]
    verbs          = ["get"]
  }
}

resource "kubernetes_role_binding_v1" "secret_reader" {
  for_each = kubernetes_role_v1.secret_reader
  metadata {
    name      = each.value.metadata[0].name
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = each.value.metadata[0].name
  }
  subject {
    kind      = "ServiceAccount"
    name      = "driftwood-${each.key}"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
  }
}

# ---- secrets: External Secrets Operator reading AWS Secrets Manager --------------------------------

resource "kubernetes_manifest" "secret_store" {
  manifest = {
    apiVersion = "external-secrets.io/v1beta1"
    kind       = "SecretStore"
    metadata   = { name = "aws-secrets-manager", namespace = kubernetes_namespace_v1.this.metadata[0].name, labels = local.labels }
    spec = {
      provider = {
        aws = {
          service = "SecretsManager"
          region  = var.aws_region
          auth    = { jwt = { serviceAccountRef = { name = kubernetes_service_account_v1.tasks.metadata[0].name } } }
        }
      }
    }
  }
}

resource "kubernetes_manifest" "external_secret" {
  for_each = {
    # The API and MLflow mount theirs as files under /run/secrets (the app reads *_FILE settings);
    # the step pods read theirs as environment (SECRET_ENV in dags/driftwood_steps.py): every key
    # they reference must be here, or the pod fails to start.
    api    = ["pii-key", "api-users"]
    tasks  = ["pii-key", "warehouse-url", "mlflow-tracking-token", "ingest-alert-webhook"]
    mlflow = ["mlflow-db-url"]
  }
  manifest = {
    apiVersion = "external-secrets.io/v1beta1"
    kind       = "ExternalSecret"
    metadata   = { name = "driftwood-${each.key}", namespace = kubernetes_namespace_v1.this.metadata[0].name, labels = local.labels }
    spec = {
      refreshInterval = "1h"
      secretStoreRef  = { name = "aws-secrets-manager", kind = "SecretStore" }
      target          = { name = "driftwood-${each.key}", creationPolicy = "Owner" }
      data = [for key in each.value : {
        secretKey = key
        remoteRef = { key = "${var.secrets_manager_prefix}/${key}" }
      }]
    }
  }
  depends_on = [kubernetes_manifest.secret_store]
}

# ---- the prediction API ---------------------------------------------------------------------------

resource "kubernetes_deployment_v1" "api" {
  for_each = local.tracks
  metadata {
    name      = "driftwood-api-${each.key}"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = merge(local.api_labels, { "driftwood.io/track" = each.key })
    annotations = {
      "driftwood.io/model-name"    = var.model_name
      "driftwood.io/model-version" = var.model_version
    }
  }
  # The HPA owns the stable replica count after creation.
  wait_for_rollout = true
  spec {
    replicas = each.value.replicas
    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_surge       = "25%"
        max_unavailable = "0"
      }
    }
    selector {
      match_labels = { "app.kubernetes.io/name" = "driftwood-api", "driftwood.io/track" = each.key }
    }
    template {
      metadata {
        labels = merge(local.api_labels, { "driftwood.io/track" = each.key })
        annotations = {
          # The champion at deploy time; the API follows the alias afterwards and reports what it serves.
          "driftwood.io/model-version" = var.model_version
          "prometheus.io/scrape"       = "true"
          "prometheus.io/port"         = "8080"
          "prometheus.io/path"         = "/metrics"
        }
      }
      spec {
        service_account_name            = kubernetes_service_account_v1.api.metadata[0].name
        automount_service_account_token = false
        security_context {
          run_as_non_root = true
          run_as_user     = 1000
          run_as_group    = 1000
          fs_group        = 1000
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }
        container {
          name              = "api"
          image             = "${var.image_registry}/driftwood-serving@${each.value.digest}"
          image_pull_policy = "Always"
          args              = ["serve"]
          port {
            name           = "http"
            container_port = 8080
          }
          env {
            name  = "MLFLOW_TRACKING_URI"
            value = var.mlflow_tracking_uri
          }
          env {
            name  = "DRIFTWOOD_MODEL_NAME"
            value = var.model_name
          }
          env {
            name  = "DRIFTWOOD_DEPLOYED_MODEL_VERSION"
            value = var.model_version
          }
          env {
            name  = "DRIFTWOOD_PII_KEY_FILE"
            value = "/run/secrets/driftwood/pii-key"
          }
          env {
            name  = "DRIFTWOOD_API_CREDENTIALS_FILE"
            value = "/run/secrets/driftwood/api-users"
          }
          env {
            name  = "DRIFTWOOD_API_HOST"
            value = "0.0.0.0"
          }
          env {
            name  = "DRIFTWOOD_HOME"
            value = "/tmp/driftwood"
          }
          resources {
            requests = { cpu = "250m", memory = "384Mi" }
            limits   = { cpu = "1", memory = "768Mi" }
          }
          liveness_probe {
            http_get {
              path = "/health/live"
              port = "http"
            }
            period_seconds    = 10
            failure_threshold = 3
          }
          readiness_probe {
            http_get {
              path = "/health/ready"
              port = "http"
            }
            period_seconds    = 5
            failure_threshold = 2
          }
          startup_probe {
            http_get {
              path = "/health/live"
              port = "http"
            }
            period_seconds    = 5
            failure_threshold = 24
          }
          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            privileged                 = false
            run_as_non_root            = true
            capabilities {
              drop = ["ALL"]
            }
          }
          volume_mount {
            name       = "secrets"
            mount_path = "/run/secrets/driftwood"
            read_only  = true
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }
        volume {
          name = "secrets"
          secret {
            secret_name  = "driftwood-api"
            default_mode = "0440"
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = "256Mi"
          }
        }
      }
    }
  }
  lifecycle {
    ignore_changes = [spec[0].replicas]
  }
  depends_on = [kubernetes_manifest.external_secret]
}

resource "kubernetes_service_v1" "api" {
  for_each = local.tracks
  metadata {
    name      = "driftwood-api-${each.key}"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.api_labels
  }
  spec {
    type     = "ClusterIP"
    selector = { "app.kubernetes.io/name" = "driftwood-api", "driftwood.io/track" = each.key }
    port {
      name        = "http"
      port        = 80
      target_port = "http"
    }
  }
}

resource "kubernetes_horizontal_pod_autoscaler_v2" "api" {
  metadata {
    name      = "driftwood-api-stable"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.api_labels
  }
  spec {
    min_replicas = var.api_replicas
    max_replicas = var.api_max_replicas
    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.api["stable"].metadata[0].name
    }
    metric {
      type = "Resource"
      resource {
        name = "cpu"
        target {
          type                = "Utilization"
          average_utilization = 70
        }
      }
    }
    behavior {
      scale_down {
        stabilization_window_seconds = 300
        select_policy                = "Max"
        policy {
          type           = "Percent"
          value          = 50
          period_seconds = 60
        }
      }
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "api" {
  metadata {
    name      = "driftwood-api"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.api_labels
  }
  spec {
    min_available = 1
    selector {
      match_labels = { "app.kubernetes.io/name" = "driftwood-api", "driftwood.io/track" = "stable" }
    }
  }
}

# Traffic split: the main Ingress sends to stable; the canary Ingress (ingress-nginx canary
# annotations) takes `canary_weight` percent. 0 removes the canary from the path.
resource "kubernetes_ingress_v1" "api" {
  for_each = { stable = {}, canary = { "nginx.ingress.kubernetes.io/canary" = "true", "nginx.ingress.kubernetes.io/canary-weight" = tostring(var.canary_weight) } }
  metadata {
    name        = "driftwood-api-${each.key}"
    namespace   = kubernetes_namespace_v1.this.metadata[0].name
    labels      = local.api_labels
    annotations = merge({ "nginx.ingress.kubernetes.io/ssl-redirect" = "true" }, each.value)
  }
  spec {
    ingress_class_name = "nginx"
    tls {
      hosts       = [var.api_host]
      secret_name = "driftwood-api-tls"
    }
    rule {
      host = var.api_host
      http {
        path {
          path      = "/"
          path_type = "Prefix"
          backend {
            service {
              name = kubernetes_service_v1.api[each.key].metadata[0].name
              port {
                name = "http"
              }
            }
          }
        }
      }
    }
  }
}

# ---- network policies: deny by default, then allow what the design needs --------------------------

resource "kubernetes_network_policy_v1" "default_deny" {
  metadata {
    name      = "default-deny"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  spec {
    pod_selector {}
    policy_types = ["Ingress", "Egress"]
  }
}

resource "kubernetes_network_policy_v1" "api_ingress" {
  metadata {
    name      = "driftwood-api-ingress"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  spec {
    pod_selector {
      match_labels = { "app.kubernetes.io/name" = "driftwood-api" }
    }
    policy_types = ["Ingress"]
    ingress {
      from {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = var.ingress_namespace }
        }
      }
      from {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = var.monitoring_namespace }
        }
      }
      ports {
        port     = "8080"
        protocol = "TCP"
      }
    }
  }
}

# All Driftwood pods may resolve names and reach MLflow, PostgreSQL and AWS APIs over TLS/5432/5000.
resource "kubernetes_network_policy_v1" "egress" {
  metadata {
    name      = "driftwood-egress"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  spec {
    pod_selector {}
    policy_types = ["Egress"]
    egress {
      to {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = "kube-system" }
        }
        pod_selector {
          match_labels = { "k8s-app" = "kube-dns" }
        }
      }
      ports {
        port     = "53"
        protocol = "UDP"
      }
      ports {
        port     = "53"
        protocol = "TCP"
      }
    }
    egress {
      ports {
        port     = "443"
        protocol = "TCP"
      }
      ports {
        port     = "5432"
        protocol = "TCP"
      }
      ports {
        port     = "5000"
        protocol = "TCP"
      }
    }
  }
}

# ---- MLflow tracking server and registry ------------------------------------------------------------

resource "kubernetes_deployment_v1" "mlflow" {
  metadata {
    name      = "driftwood-mlflow"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = merge(local.labels, { "app.kubernetes.io/name" = "driftwood-mlflow" })
  }
  spec {
    replicas = 2
    selector {
      match_labels = { "app.kubernetes.io/name" = "driftwood-mlflow" }
    }
    template {
      metadata {
        labels = merge(local.labels, { "app.kubernetes.io/name" = "driftwood-mlflow" })
      }
      spec {
        service_account_name            = kubernetes_service_account_v1.mlflow.metadata[0].name
        automount_service_account_token = false
        security_context {
          run_as_non_root = true
          run_as_user     = 10001
          run_as_group    = 10001
          fs_group        = 10001
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }
        container {
          name              = "mlflow"
          image             = "${var.image_registry}/driftwood-mlflow@${var.image_digests["mlflow"]}"
          image_pull_policy = "Always"
          # The database URL is read from the mounted secret file at start, never put in the environment.
          command = ["/bin/sh", "-c"]
          args = [join(" ", [
            "exec mlflow server --host 0.0.0.0 --port 5000",
            "--backend-store-uri \"$(cat /run/secrets/driftwood/mlflow-db-url)\"",
            "--artifacts-destination s3://${var.lake_bucket}/mlflow --serve-artifacts",
            "--allowed-hosts \"driftwood-mlflow:5000,driftwood-mlflow.${local.namespace}.svc.cluster.local:5000,localhost:*\"",
          ])]
          port {
            name           = "http"
            container_port = 5000
          }
          env {
            name  = "HOME"
            value = "/tmp"
          }
          resources {
            requests = { cpu = "250m", memory = "512Mi" }
            limits   = { cpu = "1", memory = "1536Mi" }
          }
          liveness_probe {
            http_get {
              path = "/health"
              port = "http"
            }
            period_seconds = 15
          }
          readiness_probe {
            http_get {
              path = "/health"
              port = "http"
            }
            period_seconds = 5
          }
          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            privileged                 = false
            run_as_non_root            = true
            capabilities {
              drop = ["ALL"]
            }
          }
          volume_mount {
            name       = "secrets"
            mount_path = "/run/secrets/driftwood"
            read_only  = true
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }
        volume {
          name = "secrets"
          secret {
            secret_name  = "driftwood-mlflow"
            default_mode = "0440"
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = "1Gi"
          }
        }
      }
    }
  }
  depends_on = [kubernetes_manifest.external_secret]
}

resource "kubernetes_service_v1" "mlflow" {
  metadata {
    name      = "driftwood-mlflow"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  spec {
    type     = "ClusterIP"
    selector = { "app.kubernetes.io/name" = "driftwood-mlflow" }
    port {
      name        = "http"
      port        = 5000
      target_port = "http"
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "mlflow" {
  metadata {
    name      = "driftwood-mlflow"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  spec {
    min_available = 1
    selector {
      match_labels = { "app.kubernetes.io/name" = "driftwood-mlflow" }
    }
  }
}

# MLflow answers only the namespace's own pods (API, steps, Airflow) and monitoring.
resource "kubernetes_network_policy_v1" "mlflow_ingress" {
  metadata {
    name      = "driftwood-mlflow-ingress"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = local.labels
  }
  spec {
    pod_selector {
      match_labels = { "app.kubernetes.io/name" = "driftwood-mlflow" }
    }
    policy_types = ["Ingress"]
    ingress {
      from {
        pod_selector {}
      }
      from {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = var.monitoring_namespace }
        }
      }
      ports {
        port     = "5000"
        protocol = "TCP"
      }
    }
  }
}
