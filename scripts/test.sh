#!/usr/bin/env bash
# Runs every suite — TypeScript (vitest: unit, integration, e2e), Python (pytest: DAGs, monitoring)
# and the container stack (pytest: images, compose, the loop in containers) — and
# prints one summary line, `N passed, N failed`, as its last line. Each suite starts the services it
# needs once (vitest's global setup starts one MLflow server) and stops them when it ends.
#   scripts/test.sh [vitest filters…]
source "$(dirname "$0")/lib.sh"

out="$DRIFTWOOD_HOME/test/results"
rm -rf "$out" && mkdir -p "$out"
summary="$DRIFTWOOD_HOME/test/summary.txt"
rm -f "$summary"
t0=$(date +%s)

stage "TypeScript suites (vitest)"
vitest_rc=0
export DRIFTWOOD_RELIABILITY_ROWS="$DRIFTWOOD_HOME/test/reliability.jsonl"
rm -f "$DRIFTWOOD_RELIABILITY_ROWS"
(cd "$ROOT" && npx vitest run --reporter=default --reporter=json --outputFile.json="$out/vitest.json" "$@") || vitest_rc=$?
# The reliability checks ran inside vitest at CI size; their goal-vs-measured table (counted above).
[ -f "$DRIFTWOOD_RELIABILITY_ROWS" ] && node "$ROOT/scripts/reliability-table.mjs" || true
done_stage

stage "Python suites (pytest)"
pytest_rc=0
export AIRFLOW_HOME="$DRIFTWOOD_HOME/test/airflow-pytest"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
mkdir -p "$AIRFLOW_HOME"
(cd "$ROOT" && .venvs/airflow/bin/python -m pytest -q -p no:cacheprovider --junitxml="$out/pytest.xml" tests/python) || pytest_rc=$?
done_stage

# The drift sidecar and the Prometheus/Alertmanager/Grafana checks run in the sidecar's own venv.
stage "Monitoring suites (pytest, .venvs/evidently)"
monitoring_rc=0
(cd "$ROOT" && .venvs/evidently/bin/python -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning --junitxml="$out/pytest-monitoring.xml" tests/monitoring) || monitoring_rc=$?
done_stage

# The images and the compose stack in real containers (podman where no Docker engine answers): one
# stack for the whole suite. The engine is stopped afterwards only if this run started it.
stage "Container stack suite (pytest, tests/stack)"
stack_rc=0
engine_was_up=0
"$ROOT/scripts/container-engine.sh" env >/dev/null 2>&1 && engine_was_up=1
(cd "$ROOT" && .venvs/airflow/bin/python -m pytest -q -p no:cacheprovider -s --junitxml="$out/pytest-stack.xml" tests/stack) || stack_rc=$?
[ "$engine_was_up" = 1 ] || "$ROOT/scripts/container-engine.sh" stop >/dev/null 2>&1 || true
done_stage

# Count from the reporters' files, not from the exit codes: a suite that crashed before reporting
# counts as one failure, and skipped tests count as neither passed nor failed.
read -r passed failed < <(python3 - "$out" "$vitest_rc" "$pytest_rc" "$monitoring_rc" "$stack_rc" <<'PY'
import json, sys, xml.etree.ElementTree as ET
from pathlib import Path
out = Path(sys.argv[1])
vitest_rc, pytest_rc, monitoring_rc, stack_rc = (int(a) for a in sys.argv[2:6])
passed = failed = 0
try:
    v = json.loads((out / "vitest.json").read_text())
    passed += v["numPassedTests"]
    failed += v["numFailedTests"] + (1 if vitest_rc and v["numFailedTests"] == 0 else 0)
except (OSError, ValueError, KeyError):
    failed += 1
for name, rc in (("pytest.xml", pytest_rc), ("pytest-monitoring.xml", monitoring_rc), ("pytest-stack.xml", stack_rc)):
    try:
        root = ET.parse(out / name).getroot()
    except (OSError, ET.ParseError):
        failed += 1
        continue
    suite_failed = 0
    for s in [root] if root.tag == "testsuite" else list(root):
        n, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        passed += n - f - e - sk
        suite_failed += f + e
    # A non-zero exit with no failure recorded (a crash, no tests collected) still counts as one.
    failed += suite_failed + (1 if rc != 0 and suite_failed == 0 else 0)
print(passed, failed)
PY
)
echo "all suites took $(( $(date +%s) - t0 ))s"
echo "$passed passed, $failed failed" | tee "$summary"
[ "$failed" -eq 0 ]
