#!/usr/bin/env bash
# The full local stack as processes on this machine (`make up`; `make down` / scripts/down.sh stops it):
#   MLflow     scripts/mlflow.sh start            http://127.0.0.1:$MLFLOW_PORT      (5000)
#   Airflow    scripts/airflow-service.sh start   http://127.0.0.1:$AIRFLOW_PORT     (8081; UI + REST,
#              scheduler with the LocalExecutor, DAG processor; login generated once and printed)
#   API        node tasks/dist/cli.js serve       http://127.0.0.1:$DRIFTWOOD_API_PORT (8080)
# The API starts without a model too: /health/ready answers 503 until a champion exists (run
# churn_pipeline from the Airflow UI, or `make demo`), then it loads it. Its POST /v1/train triggers
# churn_retrain on this Airflow. Each service is a process group recorded under $DRIFTWOOD_HOME/run.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

export DRIFTWOOD_HOME
AIRFLOW_PORT="${AIRFLOW_PORT:-8081}"
export DRIFTWOOD_API_PORT="${DRIFTWOOD_API_PORT:-8080}"
export MLFLOW_TRACKING_URI
API="http://127.0.0.1:$DRIFTWOOD_API_PORT"
AIRFLOW="http://127.0.0.1:$AIRFLOW_PORT"

[ -f tasks/dist/cli.js ] || { echo "tasks/dist/cli.js is missing: run 'make install' (or 'make build') first" >&2; exit 1; }

# Secrets are made once per machine under $DRIFTWOOD_HOME/secrets, never in the repo.
mkdir -p "$DRIFTWOOD_HOME/secrets"
if [ -z "${DRIFTWOOD_PII_KEY:-}${DRIFTWOOD_PII_KEY_FILE:-}" ]; then
  DRIFTWOOD_PII_KEY_FILE=$(scripts/pii-key.sh)
  export DRIFTWOOD_PII_KEY_FILE
fi

# A failed start leaves nothing half-running.
trap 'echo "start failed; stopping what was started" >&2; "$ROOT/scripts/down.sh" >&2' ERR

stage "MLflow on $MLFLOW_TRACKING_URI"
scripts/mlflow.sh start "$MLFLOW_PORT"
done_stage

# The scheduler's task processes inherit this environment (MLflow URI, PII key file, DRIFTWOOD_HOME).
stage "Airflow (API server + UI, scheduler, DAG processor) on $AIRFLOW"
scripts/airflow-service.sh start "$AIRFLOW_PORT"
done_stage

stage "the prediction API on $API"
# POST /v1/train goes to this Airflow as the generated `driftwood` user (password from a 0600 file).
password_file="$DRIFTWOOD_HOME/secrets/airflow-driftwood-password"
(umask 077 && python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["driftwood"])' \
  "$DRIFTWOOD_HOME/secrets/airflow-passwords.json" > "$password_file")
# The API fails closed without credentials: its two users are made once (admin, predict).
api_users
if pid_alive driftwood-api; then
  echo "the API is already running"
else
  DRIFTWOOD_AIRFLOW_URL="$AIRFLOW" DRIFTWOOD_AIRFLOW_USER=driftwood DRIFTWOOD_AIRFLOW_PASSWORD_FILE="$password_file" \
    setsid node tasks/dist/cli.js serve > "$DRIFTWOOD_HOME/api.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/driftwood-api.pid"
fi
wait_http "$API/health/live" 60 "$(cat "$RUN_DIR/driftwood-api.pid")" || { tail -20 "$DRIFTWOOD_HOME/api.log" >&2; false; }
ready=$(curl -sS -m 5 "$API/health/ready" || true)
done_stage
trap - ERR

echo
echo "Driftwood is up (stop it with 'make down'):"
echo "  MLflow UI    $MLFLOW_TRACKING_URI   (health: $MLFLOW_TRACKING_URI/health)"
echo "  Airflow UI   $AIRFLOW   (health: $AIRFLOW/api/v2/monitor/health)"
echo "               user: driftwood  password: $(cat "$password_file")"
echo "  API          $API/v1/predict   (docs: $API/docs, ready: $API/health/ready → $ready)"
echo "  Dashboard    $API/ui/"
[ -n "$API_PASSWORDS" ] && echo "               users admin (predict, admin) and predict; passwords in $API_PASSWORDS"
echo "  logs         $DRIFTWOOD_HOME/api.log, $DRIFTWOOD_HOME/mlflow/server.log, $DRIFTWOOD_HOME/airflow-service/*.log"
