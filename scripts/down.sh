#!/usr/bin/env bash
# Stops what scripts/up.sh started (`make down`): the API, the drift sidecar, Airflow's four processes,
# MLflow. Each is a recorded process group; stopping one that is not running is not an error.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

stop_pid driftwood-api
stop_pid drift-sidecar
scripts/airflow-service.sh stop
scripts/mlflow.sh stop "$MLFLOW_PORT"
echo "Driftwood stopped."
