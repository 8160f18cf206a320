#!/usr/bin/env bash
# The whole Driftwood stack as containers (docker-compose.yml, profile `full`): PostgreSQL warehouse,
# S3, MLflow, Airflow (API server, scheduler, DAG processor, Celery worker running each step in its
# own container), the API, the drift sidecar, Prometheus and Alertmanager.
#
#   scripts/stack.sh up      # engine, images, secrets, stack; then a first champion if there is none
#   scripts/stack.sh down    # stops the stack; named volumes (runs, warehouse, champion) are kept
#   scripts/stack.sh status  # the services and their health
#   scripts/stack.sh urls    # the URLs and logins
#
# Settings: DRIFTWOOD_STACK (project, network and volume prefix, default driftwood),
# DRIFTWOOD_SECRETS_DIR, DRIFTWOOD_STACK_{API,AIRFLOW,MLFLOW,PROMETHEUS,PROXY,SLACK_SINK}_PORT,
# STACK_SEED=0 to skip the first champion. On a machine that cannot pull the pinned images,
# docker-compose.offline.yml is added and the services it cannot provide are left out.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

export DRIFTWOOD_STACK="${DRIFTWOOD_STACK:-driftwood}"
export DRIFTWOOD_SECRETS_DIR="${DRIFTWOOD_SECRETS_DIR:-$ROOT/.driftwood/secrets}"
export COMPOSE_PROFILES=full
API_PORT="${DRIFTWOOD_STACK_API_PORT:-8080}"
AIRFLOW_PORT="${DRIFTWOOD_STACK_AIRFLOW_PORT:-8081}"
MLFLOW_PORT="${DRIFTWOOD_STACK_MLFLOW_PORT:-5000}"
PROMETHEUS_PORT="${DRIFTWOOD_STACK_PROMETHEUS_PORT:-9090}"
SINK_PORT="${DRIFTWOOD_STACK_SLACK_SINK_PORT:-8099}"
# Services that exist only as registry images (docker-compose.offline.yml has no stand-in for them).
REGISTRY_ONLY=(grafana statsd-exporter docker-proxy)
# The demo data: two weeks of simulated customer activity ending at the current hour.
SEED_HOURS="${STACK_SEED_HOURS:-336}"

engine() {
  local line
  line=$(scripts/container-engine.sh start | tail -1)
  export "${line?}"
  case "$DOCKER_HOST" in unix://*) export DRIFTWOOD_ENGINE_SOCKET="${DOCKER_HOST#unix://}" ;; esac
}

offline() { ! docker image inspect "$(sed -n 's/^ARG NODE_IMAGE=//p' docker/serving.Dockerfile)" >/dev/null 2>&1; }

compose() {
  local files=(-f docker-compose.yml)
  [ -f "$DRIFTWOOD_HOME/stack/offline" ] && files+=(-f docker-compose.offline.yml)
  docker-compose "${files[@]}" -p "$DRIFTWOOD_STACK" "$@"
}

services() {
  local all skip=()
  all=$(compose config --services)
  [ -f "$DRIFTWOOD_HOME/stack/offline" ] && skip=("${REGISTRY_ONLY[@]}")
  for s in $all; do
    [[ " ${skip[*]} " == *" $s "* ]] || echo "$s"
  done
}

secret() { cat "$DRIFTWOOD_SECRETS_DIR/$1"; }
airflow_password() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$DRIFTWOOD_SECRETS_DIR/airflow_users.json" "$1"; }

# A token for Airflow's REST API (the admin user of the simple auth manager).
airflow_token() {
  curl -fsS -X POST -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$(airflow_password admin)\"}" \
    "http://127.0.0.1:$AIRFLOW_PORT/auth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

champion_version() {
  curl -fsS "http://127.0.0.1:$MLFLOW_PORT/api/2.0/mlflow/registered-models/alias?name=churn&alias=champion" 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["model_version"]["version"])' 2>/dev/null
}

# The DAG processor parses the DAG files after its start: a DAG is there once the API knows it.
wait_dag() { # dag_id token
  for _ in $(seq 1 120); do
    curl -fsS -o /dev/null -H "authorization: Bearer $2" "http://127.0.0.1:$AIRFLOW_PORT/api/v2/dags/$1" && return 0
    sleep 2
  done
  echo "  DAG $1 did not appear in Airflow" >&2
  return 1
}

wait_healthy() { # service timeout
  local id state deadline=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    id=$(compose ps -q "$1" 2>/dev/null | head -1)
    if [ -n "$id" ]; then
      state=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || true)
      [ "$state" = healthy ] && return 0
    fi
    sleep 3
  done
  echo "  $1 is not healthy after $2 s (state: ${state:-none}); its last lines:" >&2
  compose logs --tail 30 "$1" >&2 || true
  return 1
}

up() {
  local t0
  t0=$(date +%s)
  stage "container engine"
  engine
  echo "  DOCKER_HOST=$DOCKER_HOST"
  done_stage

  stage "images (layers reused when nothing changed)"
  mkdir -p "$DRIFTWOOD_HOME/stack"
  docker/build-images.sh
  if offline; then touch "$DRIFTWOOD_HOME/stack/offline"; else rm -f "$DRIFTWOOD_HOME/stack/offline"; fi
  done_stage

  stage "secrets in $DRIFTWOOD_SECRETS_DIR"
  docker/make-secrets.sh
  done_stage

  stage "starting the stack (project $DRIFTWOOD_STACK${DRIFTWOOD_HOME:+, offline stand-ins: $([ -f "$DRIFTWOOD_HOME/stack/offline" ] && echo yes || echo no)})"
  # shellcheck disable=SC2046
  compose up -d --no-build $(services)
  for s in postgres mlflow airflow-apiserver airflow-scheduler airflow-worker airflow-dag-processor api-blue evidently prometheus; do
    wait_healthy "$s" 600
  done
  done_stage
  echo "  stack up in $(( $(date +%s) - t0 ))s"

  if [ "${STACK_SEED:-1}" = 1 ] && [ -z "$(champion_version)" ]; then seed; fi
  urls
}

# A first champion: simulated data into the lake (one step container), then churn_pipeline through
# Airflow's REST API, waited for until the API serves the version it registered.
seed() {
  local end start token run state version t0
  t0=$(date +%s)
  end=$(date -u +%Y-%m-%dT%H:00:00Z)
  start=$(date -u -d "$end - $SEED_HOURS hours" +%Y-%m-%dT%H:00:00Z)
  stage "landing $SEED_HOURS hours of simulated activity ($start → $end) in the lake"
  docker run --rm --network "$DRIFTWOOD_STACK" -v "$DRIFTWOOD_STACK-data:/var/lib/driftwood" \
    -e DRIFTWOOD_HOME=/var/lib/driftwood -e DRIFTWOOD_LAKE_URI=file:///var/lib/driftwood/lake \
    "${DRIFTWOOD_REGISTRY:-ghcr.io/driftwood-mlops}/driftwood-tasks:${DRIFTWOOD_TAG:-dev}" \
    simulate --dataset churn --start "$start" --hours "$SEED_HOURS" --seed 42 --customers 2000 \
    >/dev/null 2>"$DRIFTWOOD_HOME/stack/seed-simulate.log" \
    || { tail -20 "$DRIFTWOOD_HOME/stack/seed-simulate.log" >&2; return 1; }
  done_stage

  stage "churn_pipeline through Airflow's REST API"
  token=$(airflow_token)
  # Unpaused, so that the scheduler runs what is triggered; churn_retrain is the sidecar's target.
  wait_dag churn_pipeline "$token" && wait_dag churn_retrain "$token"
  for dag in churn_pipeline churn_retrain; do
    curl -fsS -X PATCH -H "authorization: Bearer $token" -H 'content-type: application/json' \
      -d '{"is_paused": false}' "http://127.0.0.1:$AIRFLOW_PORT/api/v2/dags/$dag" >/dev/null
  done
  run="stack-seed-$(date +%s)"
  curl -fsS -X POST -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"dag_run_id\":\"$run\",\"logical_date\":\"$end\",\"conf\":{}}" \
    "http://127.0.0.1:$AIRFLOW_PORT/api/v2/dags/churn_pipeline/dagRuns" >/dev/null
  echo "  run $run"
  state=queued
  for _ in $(seq 1 360); do
    sleep 5
    state=$(curl -fsS -H "authorization: Bearer $token" "http://127.0.0.1:$AIRFLOW_PORT/api/v2/dags/churn_pipeline/dagRuns/$run" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [ "$state" = success ] || [ "$state" = failed ] && break
  done
  [ "$state" = success ] || { echo "  churn_pipeline run $run ended $state: see the Airflow UI" >&2; return 1; }
  version=$(champion_version)
  echo "  champion: churn version $version"
  done_stage

  stage "the API serves the champion"
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$API_PORT/health/ready" >/dev/null 2>&1 && break
    sleep 2
  done
  curl -fsS "http://127.0.0.1:$API_PORT/health/ready" >/dev/null || { echo "  the API is not ready" >&2; return 1; }
  done_stage
  echo "  first champion served $(( $(date +%s) - t0 ))s after the seed began"
}

urls() {
  cat <<EOF

Driftwood stack "$DRIFTWOOD_STACK" (secrets in $DRIFTWOOD_SECRETS_DIR):
  API            http://127.0.0.1:$API_PORT/v1/predict   users smoke (predict), admin: passwords in api_predict_password, api_admin_password
  Dashboard      http://127.0.0.1:$API_PORT/ui/
  Airflow        http://127.0.0.1:$AIRFLOW_PORT/          user admin, password in airflow_users.json
  MLflow         http://127.0.0.1:$MLFLOW_PORT/
  Prometheus     http://127.0.0.1:$PROMETHEUS_PORT/
EOF
  [ -f "$DRIFTWOOD_HOME/stack/offline" ] && echo "  Slack stand-in http://127.0.0.1:$SINK_PORT/   (what Alertmanager and the ingest alert sent)"
  echo "Stop with: make stack-down (volumes are kept; docker-compose down -v removes them)"
}

down() {
  engine
  compose down --remove-orphans
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  seed) engine; seed ;;
  status) engine; compose ps ;;
  urls) urls ;;
  *) echo "usage: $0 up|down|seed|status|urls" >&2; exit 2 ;;
esac
