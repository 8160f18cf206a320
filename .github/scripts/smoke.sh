#!/usr/bin/env bash
# Smoke test of a deployed API: liveness, readiness (a model loaded), and one known prediction that
# must come back as a probability from the expected model version.
#   .github/scripts/smoke.sh https://api.staging.example [expected model version]
# DRIFTWOOD_API_BASIC_AUTH=user:password adds Basic auth to the prediction request.
set -euo pipefail
base=${1:?usage: smoke.sh <api base url> [model version]}
base=${base%/}
expected=${2:-}
auth=()
if [ -n "${DRIFTWOOD_API_BASIC_AUTH:-}" ]; then auth=(-u "${DRIFTWOOD_API_BASIC_AUTH}"); fi

for path in /health/live /health/ready; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --retry 10 --retry-all-errors --retry-delay 3 --max-time 10 "${base}${path}")
  [ "$code" = 200 ] || { echo "smoke: ${path} answered ${code}" >&2; exit 1; }
done

# A known customer: the reply must be a probability in [0, 1] with a 0/1 label.
reply=$(curl -fsS --max-time 10 "${auth[@]}" -H 'content-type: application/json' \
  -d '{"plan":"basic","region":"north","sessions_30d":1}' "${base}/v1/predict")
SMOKE_REPLY="$reply" SMOKE_EXPECTED="$expected" python3 - <<'PY'
import json, os, sys
reply = json.loads(os.environ["SMOKE_REPLY"])
p, label = reply.get("probability"), reply.get("label")
if not isinstance(p, (int, float)) or not 0 <= p <= 1 or label not in (0, 1):
    sys.exit(f"smoke: not a prediction: {reply}")
expected = os.environ["SMOKE_EXPECTED"]
served = str(reply.get("model", {}).get("version", ""))
if expected and served != expected:
    sys.exit(f"smoke: serving model version {served}, expected the champion {expected}")
print(f"smoke: ok, probability {p:.4f} from model version {served}")
PY
