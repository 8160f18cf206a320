#!/usr/bin/env bash
# Builds Driftwood's five images with the engine at DOCKER_HOST, and reports each one's build time
# and size.
#
#   docker/build-images.sh [tasks serving mlflow evidently airflow]
#
# Tags: ${DRIFTWOOD_REGISTRY:-ghcr.io/driftwood-mlops}/driftwood-<component>:${DRIFTWOOD_TAG:-dev},
# the names docker-compose.yml runs. The bases are the Dockerfiles' pinned ones, or where they cannot
# be pulled the local stand-ins of docker/offline/base-images.sh (passed with --build-arg, so the
# Dockerfiles stay as they are). Layers are reused between builds: a second run with no change takes
# seconds. The figures go to stdout and to .driftwood/images/build-report.txt.
#
# DRIFTWOOD_AIRFLOW_SPARK=1 builds the Airflow image with Java and pyspark (--build-arg SPARK=1), for
# the batch scoring DAG's spark engine (docs/scoring.md); by default it has neither.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
registry="${DRIFTWOOD_REGISTRY:-ghcr.io/driftwood-mlops}"
tag="${DRIFTWOOD_TAG:-dev}"
components=("$@")
[ ${#components[@]} -gt 0 ] || components=(tasks serving mlflow evidently airflow)
spark="${DRIFTWOOD_AIRFLOW_SPARK:-0}"
case "$spark" in 0 | 1) ;; *) echo "DRIFTWOOD_AIRFLOW_SPARK: expected 0 or 1, got '$spark'" >&2; exit 2 ;; esac
report_dir="${DRIFTWOOD_HOME:-$ROOT/.driftwood}/images"
mkdir -p "$report_dir"

bases=$(docker/offline/base-images.sh)
node_image=$(sed -n 's/^NODE_IMAGE=//p' <<<"$bases")
python_image=$(sed -n 's/^PYTHON_IMAGE=//p' <<<"$bases")
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)

report="$report_dir/build-report.txt"
: >"$report"
printf '%-10s %8s %10s  %s\n' image seconds size name | tee -a "$report"
for c in "${components[@]}"; do
  [ -f "docker/$c.Dockerfile" ] || { echo "no docker/$c.Dockerfile" >&2; exit 2; }
  name="$registry/driftwood-$c:$tag"
  log="$report_dir/build-$c.log"
  t0=$(date +%s)
  extra=() label="$c"
  [ "$c" != airflow ] || extra=(--build-arg "SPARK=$spark")
  [ "$c" != airflow ] || [ "$spark" != 1 ] || label="$c+spark"
  if ! docker build -f "docker/$c.Dockerfile" \
      --build-arg "NODE_IMAGE=$node_image" --build-arg "PYTHON_IMAGE=$python_image" \
      --build-arg "VCS_REF=$revision" "${extra[@]}" -t "$name" . >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "building $name failed; full log: $log" >&2
    exit 1
  fi
  size=$(docker image inspect "$name" --format '{{.Size}}')
  printf '%-10s %8s %9sM  %s\n' "$label" "$(( $(date +%s) - t0 ))" "$(( size / 1000000 ))" "$name" | tee -a "$report"
done
