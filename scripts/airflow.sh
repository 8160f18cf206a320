#!/usr/bin/env bash
# Runs Airflow commands against the project's embedded setup: DAGs from ./dags, a SQLite metadata
# database under $DRIFTWOOD_HOME/airflow (migrated once; a migrated copy is kept and reused).
#   scripts/airflow.sh dags-test DAG_ID [LOGICAL_DATE]
#   scripts/airflow.sh <any airflow arguments>
source "$(dirname "$0")/lib.sh"

export AIRFLOW_HOME="${AIRFLOW_HOME:-$DRIFTWOOD_HOME/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
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

case "${1:-}" in
  dags-test)
    dag=${2:?usage: $0 dags-test DAG_ID [LOGICAL_DATE]}
    ensure_db
    shift 2
    exec "$AIRFLOW" dags test "$dag" "$@"
    ;;
  db-ready) ensure_db ;;
  *) ensure_db; exec "$AIRFLOW" "$@" ;;
esac
