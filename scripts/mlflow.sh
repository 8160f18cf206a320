#!/usr/bin/env bash
# Starts or stops the project's MLflow tracking server: SQLite backend store, local artifacts served
# through the server's artifact proxy (mlflow-artifacts:/), on 127.0.0.1.
#   scripts/mlflow.sh start [PORT] [DIR]   (default 5000 and $DRIFTWOOD_HOME/mlflow)
#   scripts/mlflow.sh stop [PORT]
source "$(dirname "$0")/lib.sh"

cmd=${1:-start}
port=${2:-${MLFLOW_PORT:-5000}}
dir=${3:-$DRIFTWOOD_HOME/mlflow}
name="mlflow-$port"
template="$DRIFTWOOD_HOME/cache/mlflow-empty.db"

case "$cmd" in
  start)
    if pid_alive "$name" && curl -fsS -o /dev/null -m 2 "http://127.0.0.1:$port/health"; then
      echo "MLflow already running on http://127.0.0.1:$port"; exit 0
    fi
    mkdir -p "$dir/artifacts" "$(dirname "$template")"
    # Creating MLflow's schema runs ~100 migrations; a migrated empty database is kept and copied.
    fresh=0
    if [ ! -f "$dir/mlflow.db" ]; then
      if [ -f "$template" ]; then cp "$template" "$dir/mlflow.db"; else fresh=1; fi
    fi
    # The job runner (huey consumers) is not used by Driftwood and costs CPU on a small machine.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$ROOT/.venvs/mlflow/bin/mlflow" server \
      --backend-store-uri "sqlite:///$dir/mlflow.db" \
      --artifacts-destination "$dir/artifacts" \
      --host 127.0.0.1 --port "$port" --workers 1 \
      --allowed-hosts "localhost:*,127.0.0.1:*,mlflow:5000" \
      > "$dir/server.log" 2>&1 < /dev/null &
    echo $! > "$RUN_DIR/$name.pid"
    if ! wait_http "http://127.0.0.1:$port/health" 600 "$(cat "$RUN_DIR/$name.pid")"; then
      tail -20 "$dir/server.log" >&2; exit 1
    fi
    if [ "$fresh" = 1 ]; then
      sqlite_copy "$dir/mlflow.db" "$template.tmp" \
        && mv "$template.tmp" "$template"
    fi
    echo "MLflow running on http://127.0.0.1:$port (logs: $dir/server.log)"
    ;;
  stop)
    stop_pid "$name"
    ;;
  *) echo "usage: $0 start|stop [PORT] [DIR]" >&2; exit 2 ;;
esac
