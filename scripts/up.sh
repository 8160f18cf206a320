#!/usr/bin/env bash
# The full local stack as processes on this machine (`make up`; `make down` / scripts/down.sh stops it):
#   MLflow     scripts/mlflow.sh start            http://127.0.0.1:$MLFLOW_PORT      (5000)
#   Airflow    scripts/airflow-service.sh start   http://127.0.0.1:$AIRFLOW_PORT     (8081; UI + REST,
#              scheduler with the LocalExecutor, DAG processor, triggerer; login generated once and
#              printed; the Airflow home `make demo` uses, so its runs show in the UI)
#   drift      python -m monitoring.evidently     http://127.0.0.1:$DRIFTWOOD_SIDECAR_PORT (8000; the
#              Evidently sidecar: reads the API's prediction log, compares it with the champion's
#              training snapshot, asks Airflow for churn_retrain when drift holds)
#   API        node tasks/dist/cli.js serve       http://127.0.0.1:$DRIFTWOOD_API_PORT (8080; the
#              dashboard at /ui/)
# The API starts without a model too: /health/ready answers 503 until a champion exists (run
# churn_pipeline from the Airflow UI, or `make demo`), then it loads it, told by MLflow's registry
# webhook (registered here) the moment the champion alias moves. Its POST /v1/train triggers
# churn_retrain on this Airflow. Each service is a process group recorded under $DRIFTWOOD_HOME/run.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

export DRIFTWOOD_HOME
AIRFLOW_PORT="${AIRFLOW_PORT:-8081}"
export DRIFTWOOD_API_PORT="${DRIFTWOOD_API_PORT:-8080}"
export MLFLOW_TRACKING_URI
API="http://127.0.0.1:$DRIFTWOOD_API_PORT"
AIRFLOW="http://127.0.0.1:$AIRFLOW_PORT"
SIDECAR_PORT="${DRIFTWOOD_SIDECAR_PORT:-8000}"
SIDECAR="http://127.0.0.1:$SIDECAR_PORT"
export AIRFLOW_HOME

[ -f tasks/dist/cli.js ] || { echo "tasks/dist/cli.js is missing: run 'make install' (or 'make build') first" >&2; exit 1; }

# Secrets are made once per machine under $DRIFTWOOD_HOME/secrets, never in the repo.
mkdir -p "$DRIFTWOOD_HOME/secrets"
if [ -z "${DRIFTWOOD_PII_KEY:-}${DRIFTWOOD_PII_KEY_FILE:-}" ]; then
  DRIFTWOOD_PII_KEY_FILE=$(scripts/pii-key.sh)
  export DRIFTWOOD_PII_KEY_FILE
fi

# MLflow tells the API when an alias moves (POST /v1/hooks/mlflow, signed with this secret), so a new
# champion answers at once rather than at the next registry poll. MLflow keeps webhook secrets
# encrypted under a key of its own; a fixed one lets a restarted server still read the webhook.
hook_secret="$DRIFTWOOD_HOME/secrets/mlflow-webhook-secret"
hook_key="$DRIFTWOOD_HOME/secrets/mlflow-webhook-key"
for f in "$hook_secret" "$hook_key"; do
  [ -s "$f" ] || (umask 077 && python3 -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())' > "$f")
done

# POST /v1/train and the sidecar's retrain requests go to this Airflow as the generated `driftwood`
# user (password from a 0600 file, written once Airflow has made the login).
password_file="$DRIFTWOOD_HOME/secrets/airflow-driftwood-password"

# DRIFTWOOD_MONITOR_CONFIG names a drift config of one's own; else this one is written on every start,
# from monitoring/evidently/config.example.yaml with this stack's home, MLflow and Airflow. The
# warehouse URL and the PII key stay in the environment (the config names the variables).
monitor_config="${DRIFTWOOD_MONITOR_CONFIG:-$DRIFTWOOD_HOME/monitor.yaml}"
if [ -z "${DRIFTWOOD_MONITOR_CONFIG:-}" ]; then
  export DRIFTWOOD_WAREHOUSE_URL="${DRIFTWOOD_WAREHOUSE_URL:-sqlite://$DRIFTWOOD_HOME/warehouse.db}"
  if [ -n "${DRIFTWOOD_WAREHOUSE_URL_FILE:-}" ]; then warehouse="warehouse_url_file: $DRIFTWOOD_WAREHOUSE_URL_FILE"
  else warehouse="warehouse_url: \${DRIFTWOOD_WAREHOUSE_URL}"; fi
  sed -e "s|^  url: http://127.0.0.1:8080$|  url: $AIRFLOW|" \
      -e "s|^  username: driftwood-monitor$|  username: driftwood|" \
      -e "s|^  password_file: .*airflow-monitor-password$|  password_file: $password_file|" \
      -e "s|^  warehouse_url: .*|  $warehouse|" \
      -e '/^  pii_key_file: /d' \
      monitoring/evidently/config.example.yaml > "$monitor_config.tmp"
  # Every substitution took, or the example's layout changed under this script: say so, do not guess.
  for line in "  url: $AIRFLOW" "  username: driftwood" "  password_file: $password_file" "  $warehouse"; do
    grep -qxF "$line" "$monitor_config.tmp" \
      || { echo "could not write '$line' into $monitor_config from config.example.yaml" >&2; exit 1; }
  done
  mv "$monitor_config.tmp" "$monitor_config"
fi

# A failed start leaves nothing half-running.
trap 'echo "start failed; stopping what was started" >&2; "$ROOT/scripts/down.sh" >&2' ERR

# MLflow, the sidecar and Airflow start side by side (each spends its first seconds importing
# Python); the API, which reads MLflow, Airflow and the sidecar, starts once they answer.
stage "MLflow on $MLFLOW_TRACKING_URI, the drift sidecar on $SIDECAR, Airflow on $AIRFLOW (side by side)"
# Delivering to the API on 127.0.0.1 over http must be allowed when the server starts.
MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true \
  MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY="$(cat "$hook_key")" \
  scripts/mlflow.sh start "$MLFLOW_PORT" > "$RUN_DIR/mlflow-start.out" 2>&1 &
mlflow_start=$!
if pid_alive drift-sidecar; then
  echo "the drift sidecar is already running"
else
  DRIFTWOOD_MONITOR_CONFIG="$monitor_config" setsid "$ROOT/.venvs/evidently/bin/python" -m monitoring.evidently \
    --host 127.0.0.1 --port "$SIDECAR_PORT" > "$DRIFTWOOD_HOME/sidecar.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/drift-sidecar.pid"
fi
# Airflow: API server + UI, scheduler, DAG processor, triggerer. The scheduler's task processes
# inherit this environment (MLflow URI, PII key file, DRIFTWOOD_HOME).
scripts/airflow-service.sh start "$AIRFLOW_PORT"
wait "$mlflow_start" || { cat "$RUN_DIR/mlflow-start.out" >&2; false; }
cat "$RUN_DIR/mlflow-start.out"
# An MLflow that was already running without those settings refuses the webhook: the API then still
# finds a new champion by polling the registry (DRIFTWOOD_API_POLL_MS), so say so and go on.
python3 scripts/mlflow-webhook.py --tracking-uri "$MLFLOW_TRACKING_URI" --name driftwood-api \
  --url "$API/v1/hooks/mlflow" --secret-file "$hook_secret" \
  || echo "the MLflow webhook is not registered (restart MLflow with 'make down && make up'): the API polls the registry instead" >&2
wait_http "$SIDECAR/health" 120 "$(cat "$RUN_DIR/drift-sidecar.pid")" || { tail -20 "$DRIFTWOOD_HOME/sidecar.log" >&2; false; }
echo "drift sidecar running on $SIDECAR (log: $DRIFTWOOD_HOME/sidecar.log)"
(umask 077 && python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["driftwood"])' \
  "$DRIFTWOOD_HOME/secrets/airflow-passwords.json" > "$password_file")
export DRIFTWOOD_EVIDENTLY_URL="${DRIFTWOOD_EVIDENTLY_URL:-$SIDECAR}"
done_stage

stage "the prediction API on $API"
# The API fails closed without credentials: its two users are made once (admin, predict).
api_users
if pid_alive driftwood-api; then
  echo "the API is already running"
else
  DRIFTWOOD_AIRFLOW_URL="$AIRFLOW" DRIFTWOOD_AIRFLOW_USER=driftwood DRIFTWOOD_AIRFLOW_PASSWORD_FILE="$password_file" \
    DRIFTWOOD_API_WEBHOOK_SECRET_FILE="$hook_secret" \
    setsid node tasks/dist/cli.js serve > "$DRIFTWOOD_HOME/api.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/driftwood-api.pid"
fi
wait_http "$API/health/live" 60 "$(cat "$RUN_DIR/driftwood-api.pid")" || { tail -20 "$DRIFTWOOD_HOME/api.log" >&2; false; }
ready=$(curl -sS -m 5 "$API/health/ready" || true)
done_stage
trap - ERR

echo
echo "Driftwood is up (stop it with 'make down'):"
echo "  MLflow UI    $(mlflow_runs_url "${DRIFTWOOD_EXPERIMENT:-driftwood-churn}")   (health: $MLFLOW_TRACKING_URI/health)"
echo "  Airflow UI   $AIRFLOW   (health: $AIRFLOW/api/v2/monitor/health)"
echo "               user: driftwood  password: $(cat "$password_file")"
echo "  API          $API/v1/predict   (docs: $API/docs, ready: $API/health/ready → $ready)"
echo "  Dashboard    $API/ui/"
[ -n "$API_PASSWORDS" ] && echo "               users admin (predict, admin) and predict; passwords in $API_PASSWORDS"
echo "  Drift        $SIDECAR   (health: $SIDECAR/health, latest report: $SIDECAR/reports/latest, config: $monitor_config)"
echo "  New data     DRIFTWOOD_AIRFLOW_URL=$AIRFLOW DRIFTWOOD_AIRFLOW_PASSWORD_FILE=$password_file \\"
echo "                 node tasks/dist/cli.js simulate --dataset churn --start <ISO hour> --hours N"
echo "               lands files and posts the driftwood://churn/raw event: churn_pipeline (once unpaused) runs at once"
echo "  logs         $DRIFTWOOD_HOME/api.log, $DRIFTWOOD_HOME/sidecar.log, $DRIFTWOOD_HOME/mlflow/server.log, $AIRFLOW_HOME/*.log"
