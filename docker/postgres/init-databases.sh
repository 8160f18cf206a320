#!/usr/bin/env bash
# First start of the PostgreSQL container: one database and one login role per service, each
# password read from its secret file (never from the environment or this script).
set -euo pipefail
create() {
  local db=$1 role=$2 secret=$3
  local password
  password=$(cat "/run/secrets/$secret")
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$role" -v db="$db" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
}
create mlflow mlflow mlflow_db_password
create airflow airflow airflow_db_password
create driftwood warehouse warehouse_db_password
