#!/usr/bin/env bash
# Runs Airflow as a service on this machine: the API server (REST API and UI), the scheduler with the
# LocalExecutor, the DAG processor and the triggerer (deferred tasks), each a process group recorded
# under $DRIFTWOOD_HOME/run. Its home is the one `make demo` and `scripts/airflow.sh dags-test` use
# ($AIRFLOW_HOME, default $DRIFTWOOD_HOME/airflow), so the UI shows their runs too.
# Credentials (user `driftwood`, role admin) are generated once into $DRIFTWOOD_HOME/secrets and
# printed at start.
#   scripts/airflow-service.sh start [PORT]   (default 8081, as `make up`; AIRFLOW_PORT)
#   scripts/airflow-service.sh stop
#   scripts/airflow-service.sh status
source "$(dirname "$0")/lib.sh"

cmd=${1:-start}
port=${2:-${AIRFLOW_PORT:-8081}}
export AIRFLOW_HOME
secrets_dir="$DRIFTWOOD_HOME/secrets"
passwords="$secrets_dir/airflow-passwords.json"
jwt_file="$secrets_dir/airflow-jwt-secret"
NAMES=(airflow-api-server airflow-scheduler airflow-dag-processor airflow-triggerer)

start() {
  mkdir -p "$AIRFLOW_HOME" "$secrets_dir"
  umask 077
  [ -f "$passwords" ] || python3 -c 'import json,secrets; print(json.dumps({"driftwood": secrets.token_urlsafe(18)}))' > "$passwords"
  [ -f "$jwt_file" ] || python3 -c 'import secrets; print(secrets.token_hex(32))' > "$jwt_file"
  umask 022
  export AIRFLOW__CORE__EXECUTOR=LocalExecutor
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="driftwood:admin"
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$passwords"
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$port/execution/"
  export AIRFLOW__API__BASE_URL="http://127.0.0.1:$port/"
  AIRFLOW__API_AUTH__JWT_SECRET="$(cat "$jwt_file")"
  export AIRFLOW__API_AUTH__JWT_SECRET AIRFLOW__API__SECRET_KEY="$AIRFLOW__API_AUTH__JWT_SECRET"
  "$ROOT/scripts/airflow.sh" db-ready
  local name
  for name in "${NAMES[@]}"; do
    if pid_alive "$name"; then echo "$name already running"; continue; fi
    local args=("${name#airflow-}")
    [ "$name" = airflow-api-server ] && args+=(--host 127.0.0.1 --port "$port" --workers 1)
    # airflow.sh sets the DAG folder, the database and PYTHONPATH; setsid gives each its own group.
    setsid "$ROOT/scripts/airflow.sh" "${args[@]}" > "$AIRFLOW_HOME/$name.log" 2>&1 < /dev/null &
    echo $! > "$RUN_DIR/$name.pid"
  done
  if ! wait_http "http://127.0.0.1:$port/api/v2/monitor/health" 180 "$(cat "$RUN_DIR/airflow-api-server.pid")"; then
    tail -20 "$AIRFLOW_HOME/airflow-api-server.log" >&2; exit 1
  fi
  # Up means every part has sent its first heartbeat (the UI's badges are green), not only the API.
  local i health
  for i in $(seq 1 120); do
    health=$(curl -fsS -m 5 "http://127.0.0.1:$port/api/v2/monitor/health" 2>/dev/null | python3 -c '
import json, sys
h = json.load(sys.stdin)
print(" ".join(k for k in ("scheduler", "dag_processor", "triggerer") if (h.get(k) or {}).get("status") != "healthy"))
' 2>/dev/null || echo "?")
    [ -z "$health" ] && break
    for name in "${NAMES[@]}"; do
      pid_alive "$name" || { echo "$name exited" >&2; tail -20 "$AIRFLOW_HOME/$name.log" >&2; exit 1; }
    done
    [ "$i" = 120 ] && { echo "not healthy after 120 s: $health (logs: $AIRFLOW_HOME/*.log)" >&2; exit 1; }
    sleep 1
  done
  echo "Airflow UI and API on http://127.0.0.1:$port (logs: $AIRFLOW_HOME/*.log)"
  echo "  user: driftwood  password: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["driftwood"])' "$passwords")"
}

case "$cmd" in
  start) start ;;
  stop) for name in "${NAMES[@]}"; do stop_pid "$name"; done ;;
  status) for name in "${NAMES[@]}"; do pid_alive "$name" && echo "$name running" || echo "$name stopped"; done ;;
  *) echo "usage: $0 start [PORT] | stop | status" >&2; exit 2 ;;
esac
