#!/usr/bin/env bash
# Installs the Debian packages the suites use as real parts, when they are missing:
#   docker-compose            validates docker-compose.yml (`docker-compose config`)
#   prometheus, alertmanager  real Prometheus and Alertmanager for the monitoring tests
#   chromium                  the browser the dashboard's end-to-end tests drive
#   openjdk-17-jre-headless   Java for Spark (pyspark in the mlflow venv): the batch scoring DAG's spark engine
# Runs apt-get only if something is missing, so a machine that has them pays nothing.
set -euo pipefail
declare -A wanted=(
  [docker-compose]=docker-compose
  [prometheus]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [chromium]=chromium
  [openjdk-17-jre-headless]=java
)
missing=()
for pkg in "${!wanted[@]}"; do
  command -v "${wanted[$pkg]}" >/dev/null 2>&1 || [ -x "/usr/bin/${wanted[$pkg]}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "▶ installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Services must not start on install (policy-rc.d exit 101): the tests start their own instances.
policy=/usr/sbin/policy-rc.d
restore=0
if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null; $sudo chmod +x "$policy"; restore=1; fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ "$restore" = 1 ] && $sudo rm -f "$policy"
echo "  installed: ${missing[*]}"
