#!/usr/bin/env bash
# Prints `version=<N>` for the registry's current `champion` of a model, for $GITHUB_OUTPUT.
# A deployment records this version (terraform var model_version → pod annotation), so every
# deployment says which model it went out with. Fails when the model has no champion.
#   MLFLOW_TRACKING_URI=https://mlflow.example .github/scripts/champion-version.sh churn
set -euo pipefail
model=${1:?usage: champion-version.sh <registered model name>}
: "${MLFLOW_TRACKING_URI:?set MLFLOW_TRACKING_URI}"
auth=()
if [ -n "${MLFLOW_TRACKING_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer ${MLFLOW_TRACKING_TOKEN}"); fi
reply=$(curl -fsS --retry 3 --max-time 20 "${auth[@]}" -G \
  --data-urlencode "name=${model}" --data-urlencode "alias=champion" \
  "${MLFLOW_TRACKING_URI%/}/api/2.0/mlflow/registered-models/alias")
version=$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["model_version"]["version"])')
[[ "$version" =~ ^[0-9]+$ ]] || { echo "no champion version for ${model}: ${reply}" >&2; exit 1; }
echo "version=${version}"
