# Shared shell helpers for the Makefile's scripts. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRIFTWOOD_HOME="${DRIFTWOOD_HOME:-$ROOT/.driftwood}"
RUN_DIR="$DRIFTWOOD_HOME/run"
mkdir -p "$RUN_DIR"
# One Airflow home for `make demo`, `scripts/airflow.sh` and the service of `make up`, so that the
# UI shows every run, whichever way it was started.
AIRFLOW_HOME="${AIRFLOW_HOME:-$DRIFTWOOD_HOME/airflow}"

# MLflow's local port: MLFLOW_PORT, else the port of MLFLOW_TRACKING_URI when it names this machine,
# else 5000; and the tracking URI follows the port when it is not set. Every script that starts or
# stops the local MLflow server uses these two, so the settings agree wherever they are given.
if [ -z "${MLFLOW_PORT:-}" ]; then
  case "${MLFLOW_TRACKING_URI:-}" in
    http://127.0.0.1:*|http://localhost:*) MLFLOW_PORT="${MLFLOW_TRACKING_URI##*:}"; MLFLOW_PORT="${MLFLOW_PORT%%/*}" ;;
    *) MLFLOW_PORT=5000 ;;
  esac
fi
MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-http://127.0.0.1:$MLFLOW_PORT}"

# A stage line with its duration: `stage "what"` … `done_stage`.
_stage_t0=0
stage() { _stage_t0=$(date +%s); printf '\033[1m▶ %s\033[0m\n' "$*"; }
done_stage() { printf '  done in %ss\n' "$(( $(date +%s) - _stage_t0 ))"; }

# wait_http URL SECONDS [PID]: polls until the URL answers 200; gives up early if PID exits.
wait_http() {
  local url=$1 limit=$2 pid=${3:-} i=0
  until curl -fsS -o /dev/null -m 2 "$url" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -ge "$limit" ]; then echo "gave up waiting for $url after ${limit}s" >&2; return 1; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then echo "the process behind $url exited" >&2; return 1; fi
    sleep 1
  done
}

# pid_alive NAME: is the process recorded in $RUN_DIR/NAME.pid running?
pid_alive() {
  local f="$RUN_DIR/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# stop_pid NAME: stops the recorded process group, then waits for it.
stop_pid() {
  local f="$RUN_DIR/$1.pid"
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# sqlite_copy SRC DEST: a consistent copy of a live SQLite database (the migrated templates).
sqlite_copy() {
  python3 -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))" "$1" "$2"
}

# api_users: unless the API's auth is configured (credentials, tokens, or DRIFTWOOD_API_AUTH=none),
# makes the two API users once (scripts/api-users.sh) and exports DRIFTWOOD_API_CREDENTIALS_FILE;
# sets API_PASSWORDS to their passwords file then, else leaves it empty.
api_users() {
  API_PASSWORDS=""
  if [ -z "${DRIFTWOOD_API_CREDENTIALS:-}${DRIFTWOOD_API_CREDENTIALS_FILE:-}${DRIFTWOOD_API_JWT_ISSUER:-}" ] \
    && [ "${DRIFTWOOD_API_AUTH:-required}" != none ]; then
    DRIFTWOOD_API_CREDENTIALS_FILE=$("$ROOT/scripts/api-users.sh")
    export DRIFTWOOD_API_CREDENTIALS_FILE
    API_PASSWORDS="$DRIFTWOOD_HOME/secrets/api-passwords"
  fi
}

# demo_period NOW (epoch seconds): sets START, HOURS and END (the DAG run's logical date) of the demo's
# data. DEMO_START and DEMO_HOURS are taken as given (DEMO_HOURS alone: the hours before the current
# hour). By default the data ends at the current hour, so the DAG's run as of now finds it: a home's
# first demo starts 336 hours before the current hour and records that start; later ones keep it and
# extend to the current hour. Simulated files depend on the start and seed only, so a re-run leaves
# the files it wrote before untouched and ingest loads only the new hours.
demo_period() {
  local now_hour=$(( $1 / 3600 * 3600 )) record="$DRIFTWOOD_HOME/demo-start"
  if [ -n "${DEMO_START:-}" ]; then
    START=$DEMO_START HOURS=${DEMO_HOURS:-336}
  elif [ -n "${DEMO_HOURS:-}" ]; then
    HOURS=$DEMO_HOURS START=$(date -u -d "@$(( now_hour - DEMO_HOURS * 3600 ))" +%Y-%m-%dT%H:%M:%SZ)
  else
    START=$(cat "$record" 2>/dev/null || true)
    HOURS=0
    [ -n "$START" ] && HOURS=$(( (now_hour - $(date -u -d "$START" +%s)) / 3600 ))
    if [ "$HOURS" -lt 1 ]; then
      HOURS=336 START=$(date -u -d "@$(( now_hour - 336 * 3600 ))" +%Y-%m-%dT%H:%M:%SZ)
      echo "$START" > "$record"
    fi
  fi
  END=$(date -u -d "$START + $HOURS hours" +%Y-%m-%dT%H:%M:%S+00:00)
}

# mlflow_runs_url EXPERIMENT: the experiment's runs in MLflow's UI, in its model-training view (MLflow 3
# opens experiments in its GenAI view otherwise); the UI's root when the experiment is not there yet.
mlflow_runs_url() {
  local base=${MLFLOW_TRACKING_URI%/} id
  id=$(curl -fsS -m 5 -G "$base/api/2.0/mlflow/experiments/get-by-name" --data-urlencode "experiment_name=$1" 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["experiment"]["experiment_id"])' 2>/dev/null) || id=""
  if [ -n "$id" ]; then echo "$base/#/experiments/$id?workflowType=machine_learning"; else echo "$base"; fi
}
