#!/usr/bin/env bash
# One canary step's checks, after the traffic split moved to WEIGHT percent: the smoke test through
# the public URL, then — once the canary has served for CANARY_SOAK_SECONDS — its 5xx ratio and p99
# latency from Prometheus against the limits. A non-zero exit makes the release job roll back.
#   PROMETHEUS_URL=https://prometheus.example .github/scripts/canary-check.sh https://api.example 10
set -euo pipefail
base=${1:?usage: canary-check.sh <api base url> <weight>}
weight=${2:?usage: canary-check.sh <api base url> <weight>}
: "${PROMETHEUS_URL:?set PROMETHEUS_URL}"
soak=${CANARY_SOAK_SECONDS:-300}
max_error_ratio=${CANARY_MAX_ERROR_RATIO:-0.01}
max_p99_seconds=${CANARY_MAX_P99_SECONDS:-0.25}
here=$(dirname "$0")

"$here/smoke.sh" "$base"
echo "canary at ${weight}%: soaking ${soak}s"
sleep "$soak"

# `track` is the pod label driftwood.io/track (stable | canary), relabelled by the Prometheus scrape config
# monitoring/prometheus/prometheus-kubernetes.yml; tests/monitoring/test_monitoring_canary_track.py runs
# these queries, taken from this file, against it.
query() {
  curl -fsS --max-time 20 -G --data-urlencode "query=$1" "${PROMETHEUS_URL%/}/api/v1/query" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "nan")'
}
window=$(( soak / 60 > 1 ? soak / 60 : 1 ))m
# Probe and scrape requests are left out, as in monitoring/prometheus/rules/driftwood.yml: a /health/ready
# answering 503 while the model loads is not a failed request. A canary that never answered a 5xx has
# no 5xx series, so its 5xx rate is 0, not empty (which would read as no traffic).
canary="track=\"canary\",route!~\"/metrics|/health/.*\""
errors=$(query "(sum(rate(driftwood_http_requests_total{${canary},status_code=~\"5..\"}[${window}])) or vector(0)) / sum(rate(driftwood_http_requests_total{${canary}}[${window}]))")
p99=$(query "histogram_quantile(0.99, sum by (le) (rate(driftwood_http_request_duration_seconds_bucket{${canary}}[${window}])))")
echo "canary at ${weight}%: 5xx ratio ${errors}, p99 ${p99}s (limits ${max_error_ratio}, ${max_p99_seconds}s)"
python3 - "$errors" "$p99" "$max_error_ratio" "$max_p99_seconds" "$weight" <<'PY'
import math, sys
errors, p99, max_errors, max_p99, weight = sys.argv[1:]
# No traffic to the canary at all is a failed check, not a pass.
if math.isnan(float(errors)) or math.isnan(float(p99)):
    sys.exit(f"canary at {weight}%: no canary traffic measured")
if float(errors) > float(max_errors):
    sys.exit(f"canary at {weight}%: 5xx ratio {errors} above {max_errors}")
if float(p99) > float(max_p99):
    sys.exit(f"canary at {weight}%: p99 {p99}s above {max_p99}s")
PY
