#!/usr/bin/env bash
# Runs Airflow commands against the project's embedded setup: DAGs from ./dags, a SQLite metadata
# database under $AIRFLOW_HOME (default $DRIFTWOOD_HOME/airflow, the home `make up`'s service uses
# too; migrated once, a migrated copy is kept and reused).
#   scripts/airflow.sh dags-test DAG_ID [LOGICAL_DATE]
#   scripts/airflow.sh <any airflow arguments>
source "$(dirname "$0")/lib.sh"

export AIRFLOW_HOME
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False
# Several processes share the SQLite file (a `dags test` beside the service's scheduler, API server,
# DAG processor and triggerer). Airflow opens it in WAL mode, so readers never wait; a writer waits
# up to 60 s for another's write to end rather than the driver's 5 s before "database is locked".
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db?timeout=60}"
export DRIFTWOOD_ROOT="$ROOT"
export PYTHONPATH="$ROOT/dags${PYTHONPATH:+:$PYTHONPATH}"
AIRFLOW="$ROOT/.venvs/airflow/bin/airflow"
template="$DRIFTWOOD_HOME/cache/airflow-empty.db"
mkdir -p "$AIRFLOW_HOME" "$(dirname "$template")"

ensure_db() {
  local db="$AIRFLOW_HOME/airflow.db"
  case "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in
    sqlite:*)
      [ -f "$AIRFLOW_HOME/.migrated" ] && return 0
      if [ -f "$template" ] && [ ! -f "$db" ]; then cp "$template" "$db"; fi
      "$AIRFLOW" db migrate > "$AIRFLOW_HOME/migrate.log" 2>&1 || { tail -20 "$AIRFLOW_HOME/migrate.log" >&2; return 1; }
      [ -f "$template" ] || sqlite_copy "$db" "$template"
      touch "$AIRFLOW_HOME/.migrated"
      ;;
    *) "$AIRFLOW" db migrate > "$AIRFLOW_HOME/migrate.log" 2>&1 || { tail -20 "$AIRFLOW_HOME/migrate.log" >&2; return 1; } ;;
  esac
}

# is_unpaused DAG_ID: the DAG is in this SQLite database and not paused.
is_unpaused() {
  case "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in sqlite:///*) ;; *) return 1 ;; esac
  local db="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN#sqlite:///}"
  db="/${db#/}"; db="${db%%\?*}"
  [ -f "$db" ] && python3 - "$db" "$1" <<'PY'
import sqlite3, sys
try:
    row = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=60).execute(
        "select is_paused from dag where dag_id = ?", (sys.argv[2],)).fetchone()
except sqlite3.Error:
    row = None
sys.exit(0 if row is not None and not row[0] else 1)
PY
}

case "${1:-}" in
  dags-test)
    dag=${2:?usage: $0 dags-test DAG_ID [LOGICAL_DATE]}
    # `dags test` runs the tasks in this process. The service's scheduler also runs the tasks of
    # every running run of an unpaused DAG, this one's included: both would run each task.
    if pid_alive airflow-scheduler && is_unpaused "$dag"; then
      echo "$dag is unpaused and the scheduler of 'make up' runs on this Airflow home ($AIRFLOW_HOME):" >&2
      echo "it would run this test run's tasks a second time. Trigger a run instead" >&2
      echo "(the UI, or: $0 dags trigger $dag), or pause $dag first." >&2
      exit 2
    fi
    ensure_db
    shift 2
    exec "$AIRFLOW" dags test "$dag" "$@"
    ;;
  db-ready) ensure_db ;;
  *) ensure_db; exec "$AIRFLOW" "$@" ;;
esac
