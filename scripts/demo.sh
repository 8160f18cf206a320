#!/usr/bin/env bash
# The whole Driftwood loop on embedded defaults: MLflow (SQLite + local artifacts), simulated data in
# a lake folder up to the current hour, the churn_pipeline DAG through `airflow dags test` (in the
# Airflow home `make up` serves, so the run shows in its UI), the API serving the champion.
# ONCE=1 exits after the sample prediction and stops what it started; otherwise Ctrl-C stops it.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

export DRIFTWOOD_HOME
export MLFLOW_TRACKING_URI
export DRIFTWOOD_API_PORT="${DRIFTWOOD_API_PORT:-8080}"
API="http://127.0.0.1:$DRIFTWOOD_API_PORT"
# The data ends at the current hour (scripts/lib.sh: demo_period), so the DAG's run as of now finds
# it and unpausing churn_pipeline after the demo (`make up`, then the Airflow UI) works.
demo_period "$(date +%s)"
t_all=$(date +%s)

# The PII tokenisation key is a secret: made once per machine, kept out of the repo.
if [ -z "${DRIFTWOOD_PII_KEY:-}${DRIFTWOOD_PII_KEY_FILE:-}" ]; then
  DRIFTWOOD_PII_KEY_FILE=$(scripts/pii-key.sh)
  export DRIFTWOOD_PII_KEY_FILE
fi

api_pid=""
# An MLflow already running on the port (`make up`'s) is used and left running.
own_mlflow=1
pid_alive "mlflow-$MLFLOW_PORT" && own_mlflow=0
# Ifs, not `&&` lists: under `set -e` a false test as the trap's last command would turn the
# script's exit status into 1.
cleanup() {
  if [ -n "$api_pid" ]; then kill -TERM "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null || true; fi
  if [ "$own_mlflow" = 1 ]; then scripts/mlflow.sh stop "$MLFLOW_PORT" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

stage "starting MLflow on $MLFLOW_TRACKING_URI"
scripts/mlflow.sh start "$MLFLOW_PORT"
done_stage

stage "simulating $HOURS hours of customer activity from $START into the lake"
node tasks/dist/cli.js simulate --dataset churn --start "$START" --hours "$HOURS" --seed 42 --customers 2000 \
  2> "$DRIFTWOOD_HOME/demo-simulate.log" \
  | node -e 'const r=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(`  ${r.files} files (${r.unchanged} already there), ${(r.bytes/1e6).toFixed(1)} MB`)'
done_stage

stage "running the churn_pipeline DAG (ingest → snapshot → features → train → evaluate → promote) with airflow dags test"
log="$DRIFTWOOD_HOME/demo-airflow.log"
: > "$log"
scripts/airflow.sh dags-test churn_pipeline "$END" > "$log" 2>&1 &
dag_pid=$!
# Each task's start and end as the run records them, while it runs (the full log stays in $log).
tail -n +1 -F --pid="$dag_pid" "$log" 2>/dev/null | awk '
  /\[DAG TEST\] running task <TaskInstance: /{sub(/.*<TaskInstance: [a-z_]+\./,""); t=$1
    printf "  %s %s: started\n", strftime("%H:%M:%S"), t; fflush()}
  /new_state=/{match($0,/new_state=[a-z_]+/)
    printf "  %s %s: %s\n", strftime("%H:%M:%S"), t, substr($0,RSTART+10,RLENGTH-10); fflush()}'
if ! wait "$dag_pid"; then
  tail -40 "$log" >&2; echo "the DAG run failed; full log: $log" >&2; exit 1
fi
for step in ingest snapshot features train evaluate promote; do
  f="$DRIFTWOOD_HOME/results/$step.json"
  # Compact JSON on one line: the keys' whitespace goes, the values' (a promote reason) stays.
  [ -f "$f" ] && echo "  $step result: $(node -e 'process.stdout.write(JSON.stringify(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))).slice(0,150))' "$f")…"
done
done_stage

# The API fails closed without credentials: its two users are made once (admin, predict).
api_users
if pid_alive driftwood-api && curl -fsS -o /dev/null -m 2 "$API/health/live" 2>/dev/null; then
  # `make up` runs in this home with its API on this port: the demo uses it (it loads the new
  # champion by itself) rather than failing on the port.
  stage "using the API of 'make up' on $API (model alias: champion)"
  wait_http "$API/health/ready" 120 "$(cat "$RUN_DIR/driftwood-api.pid")" || exit 1
else
  stage "starting the API on $API (model alias: champion)"
  node tasks/dist/cli.js serve > "$DRIFTWOOD_HOME/api.log" 2>&1 &
  api_pid=$!
  wait_http "$API/health/ready" 120 "$api_pid" || { tail -20 "$DRIFTWOOD_HOME/api.log" >&2; exit 1; }
fi
done_stage

stage "a sample prediction: POST $API/v1/predict"
body='{"customer_id":"C000042","tenure_days":35,"monthly_charges":19.5,"sessions_3d":0,"sessions_7d":0,"sessions_30d":1,"minutes_30d":4,"tickets_7d":2,"tickets_30d":3,"payment_failures_30d":2,"purchases_30d":0,"hours_since_last_session":150,"plan":"basic","region":"north"}'
echo "  request:  $body"
# As the demo's predict user when the demo made the users, else as DRIFTWOOD_REPLAY_AUTH (user:password).
auth=()
if [ -n "$API_PASSWORDS" ]; then auth=(-u "$(grep '^predict:' "$API_PASSWORDS")")
elif [ -n "${DRIFTWOOD_REPLAY_AUTH:-}" ]; then auth=(-u "$DRIFTWOOD_REPLAY_AUTH"); fi
echo "  response: $(curl -fsS "${auth[@]}" -H 'content-type: application/json' -d "$body" "$API/v1/predict")"
done_stage

echo
echo "Driftwood is up (took $(( $(date +%s) - t_all ))s):"
echo "  MLflow UI      $(mlflow_runs_url "${DRIFTWOOD_EXPERIMENT:-driftwood-churn}")   (model ${DRIFTWOOD_MODEL_NAME:-churn})"
echo "  API            $API/v1/predict   (ready: $API/health/ready, OpenAPI: $API/docs)"
echo "  Dashboard      $API/ui/"
[ -n "$API_PASSWORDS" ] && echo "                 users admin (predict, admin) and predict; passwords in $API_PASSWORDS"
echo "  Airflow log    $log   (the run shows in the Airflow UI of 'make up')"
if [ "${ONCE:-}" = "1" ]; then exit 0; fi
if [ -z "$api_pid" ]; then echo "The API is make up's: 'make down' stops it."; exit 0; fi
echo "Press Ctrl-C to stop."
wait "$api_pid"
