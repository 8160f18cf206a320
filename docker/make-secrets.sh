#!/usr/bin/env bash
# Creates the compose stack's secret files under .driftwood/secrets/ or $DRIFTWOOD_SECRETS_DIR (the
# same setting docker-compose.yml reads; git-ignored by default, excluded from the
# image build context by .dockerignore) with random values. Existing files are kept, so it is safe
# to run again. The folder is private (700); the files are readable by the containers' users, which
# read them through read-only bind mounts. Usage: docker/make-secrets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${DRIFTWOOD_SECRETS_DIR:-.driftwood/secrets}"
mkdir -p "$dir" && chmod 700 "$dir"
rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
put() { # name value
  [ -s "$dir/$1" ] && return 0
  printf '%s' "$2" > "$dir/$1" && chmod 644 "$dir/$1"
}
for name in postgres_password mlflow_db_password airflow_db_password warehouse_db_password \
  airflow_jwt_secret minio_root_password grafana_admin_password pii.key; do
  put "$name" "$(rand)"
done
put minio_root_user driftwood-admin
put warehouse_url "postgres://warehouse:$(cat "$dir/warehouse_db_password")@postgres:5432/driftwood"
put airflow_db_url "postgresql+psycopg2://airflow:$(cat "$dir/airflow_db_password")@postgres:5432/airflow"
put minio_credentials "$(printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$(cat "$dir/minio_root_user")" "$(cat "$dir/minio_root_password")")"
put airflow_monitor_password "$(rand)"
# Alertmanager's bearer token for the drift sidecar's POST /alerts (both read this file).
put sidecar_alerts_token "$(rand)"
# MLflow's registry webhook to the APIs: the shared signing secret, and the Fernet key MLflow keeps
# webhook secrets encrypted under.
put mlflow_webhook_secret "$(rand)"
put mlflow_webhook_key "$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
# The drift sidecar logs in to Airflow as driftwood-monitor with the password in its own file.
put airflow_users.json "{\"admin\": \"$(rand)\", \"driftwood\": \"$(rand)\", \"driftwood-monitor\": \"$(cat "$dir/airflow_monitor_password")\"}"
# The API's Basic-auth users (serving/src/auth/credentials.ts format: user:roles:scrypt$N$r$p$salt$hash);
# the plain passwords stay in their own files for the smoke test and the operators.
put api_predict_password "$(rand)"
put api_admin_password "$(rand)"
[ -s "$dir/api_credentials" ] || python3 - "$dir" > "$dir/api_credentials" <<'PY'
import base64, hashlib, os, sys
d = sys.argv[1]
N, r, p = 2**15, 8, 1
for user, roles in (("smoke", "predict"), ("admin", "predict,admin")):
    password = open(os.path.join(d, f"api_{roles.split(',')[-1]}_password")).read()
    salt = os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=N, r=r, p=p, dklen=32, maxmem=256 * N * r * p)
    print(f"{user}:{roles}:scrypt${N}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}")
PY
chmod 644 "$dir/api_credentials"
# Replace with the real incoming-webhook URL to page Slack; the placeholder delivers nowhere.
put slack_webhook_url "https://hooks.slack.com/services/REPLACE/ME/PLEASE"
echo "secrets in $dir: $(ls "$dir" | wc -l) files"
