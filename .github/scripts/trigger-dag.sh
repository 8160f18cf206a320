#!/usr/bin/env bash
# Triggers an Airflow 3 DAG run through the REST API and waits for it to finish; exits non-zero
# unless it succeeds. A "skipped" promote (quality gate not passed) still counts as a successful run.
#   AIRFLOW_URL=https://airflow.example AIRFLOW_USERNAME=… AIRFLOW_PASSWORD=… trigger-dag.sh churn_pipeline run-id
set -euo pipefail
dag=${1:?usage: trigger-dag.sh <dag id> <run id>}
run_id=${2:?usage: trigger-dag.sh <dag id> <run id>}
: "${AIRFLOW_URL:?set AIRFLOW_URL}" "${AIRFLOW_USERNAME:?set AIRFLOW_USERNAME}" "${AIRFLOW_PASSWORD:?set AIRFLOW_PASSWORD}"
api=${AIRFLOW_URL%/}
token=$(AUTH_USER="$AIRFLOW_USERNAME" AUTH_PASSWORD="$AIRFLOW_PASSWORD" python3 -c 'import json,os; print(json.dumps({"username":os.environ["AUTH_USER"],"password":os.environ["AUTH_PASSWORD"]}))' |
  curl -fsS --max-time 20 -H 'content-type: application/json' -d @- "${api}/auth/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
echo "::add-mask::${token}"
hdr=(-H "Authorization: Bearer ${token}" -H 'content-type: application/json')
curl -fsS --max-time 20 "${hdr[@]}" -X PATCH -d '{"is_paused": false}' "${api}/api/v2/dags/${dag}" >/dev/null
curl -fsS --max-time 20 "${hdr[@]}" -d "{\"dag_run_id\": \"${run_id}\", \"logical_date\": null, \"conf\": {}}" \
  "${api}/api/v2/dags/${dag}/dagRuns" >/dev/null
echo "triggered ${dag} run ${run_id}"
for _ in $(seq 1 360); do
  state=$(curl -fsS --max-time 20 "${hdr[@]}" "${api}/api/v2/dags/${dag}/dagRuns/${run_id}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  case "$state" in
    success) echo "run ${run_id}: success"; exit 0 ;;
    failed) echo "run ${run_id}: failed" >&2; exit 1 ;;
  esac
  sleep 10
done
echo "run ${run_id}: still ${state} after an hour" >&2
exit 1
