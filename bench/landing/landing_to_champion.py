"""Files land → a new champion answers: the time, measured on the processes `make up` runs.

Starts, in a home of its own under .driftwood/bench/landing: MLflow (scripts/mlflow.sh, allowed to
deliver its registry webhook to the API), Airflow 3 (API server, scheduler with the LocalExecutor, DAG
processor; SQLite metadata database, the project's DAGs, the process runner), and the prediction API
(`node tasks/dist/cli.js serve`, default settings: registry poll 30 s, the webhook registered by
scripts/mlflow-webhook.py as `make up` does). The churn contract's pipeline is used as it is except for
its hourly schedule, left out so that only landings start runs.

1. Two weeks of data and a deliberately weak first champion, made with the CLI (one epoch at a tiny
   learning rate, promoted past the AUC floor), so that the pipeline's model is the better one and
   its promotion does not depend on luck; the API loads it.
2. The clock starts; `simulate` lands a third week. The lander posts the event, the scheduler starts
   the pipeline as of the newest landed partition, it trains on three weeks, beats the champion and
   promotes; MLflow tells the API, which swaps. The clock stops when `GET /v1/model` answers with the
   new version.

Prints the phases (landed, event recorded, run started, promote done, API answering) in seconds from
the start of the landing. Run: `.venvs/airflow/bin/python bench/landing/landing_to_champion.py`.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from orchestration_support import AirflowClient, Services, airflow_home, wait_for  # noqa: E402

MLFLOW_PORT = int(os.environ.get("BENCH_MLFLOW_PORT", "5614"))
AIRFLOW_PORT = int(os.environ.get("BENCH_AIRFLOW_PORT", "5619"))
API_PORT = int(os.environ.get("BENCH_API_PORT", "5618"))
AIRFLOW = f"http://127.0.0.1:{AIRFLOW_PORT}"
MLFLOW = f"http://127.0.0.1:{MLFLOW_PORT}"
API = f"http://127.0.0.1:{API_PORT}"
DAG = "churn_pipeline"
WEEK = 168
START = datetime(2026, 11, 1, tzinfo=UTC)


def cli(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(ROOT / "tasks" / "dist" / "cli.js"), *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"driftwood {args[0]} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as res:
        return json.loads(res.read())


def served_version() -> str | None:
    try:
        return str(get_json(f"{API}/v1/model")["version"])
    except (OSError, KeyError, ValueError):
        return None


def land(hours_from: int, hours: int, env: dict[str, str]) -> dict[str, Any]:
    start = (START.timestamp() + hours_from * 3600) * 1000
    iso = datetime.fromtimestamp(start / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")
    args = ["simulate", "--dataset", "churn", "--start", iso, "--hours", str(hours), "--customers", "1000"]
    return cli(args, env)["landing"]


def pipeline_run(client: AirflowClient, services: Services, event_id: int) -> dict[str, Any]:
    """The run that consumed the landing's event, once it has finished."""

    def started() -> dict[str, Any] | None:
        services.assert_running()
        _, runs = client.request("GET", f"/api/v2/dags/{DAG}/dagRuns?run_type=asset_triggered")
        for run in runs["dag_runs"]:
            _, consumed = client.request(
                "GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run['dag_run_id'])}/upstreamAssetEvents"
            )
            if event_id in [e["id"] for e in consumed["asset_events"]]:
                return run
        return None

    run = wait_for("the run of the landing", started, timeout=600, interval=0.5)

    def done() -> dict[str, Any] | None:
        services.assert_running()
        _, body = client.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run['dag_run_id'])}")
        return body if body["state"] in ("success", "failed") else None

    return wait_for("the landing's run to finish", done, timeout=1800, interval=1)


def main() -> None:
    # Stopped from outside (a background job ignores SIGINT): still stop what was started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    home = ROOT / ".driftwood" / "bench" / "landing"
    shutil.rmtree(home, ignore_errors=True)
    (home / "secrets").mkdir(parents=True)
    contracts = home / "contracts"
    contracts.mkdir()
    shutil.copy(ROOT / "contracts" / "contract.schema.json", contracts)
    contract = yaml.safe_load((ROOT / "contracts" / "churn.yaml").read_text())
    contract["orchestration"]["pipeline"]["schedule"] = None
    (contracts / "churn.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))

    hook_secret = home / "secrets" / "mlflow-webhook-secret"
    hook_secret.write_text(secrets.token_urlsafe(24))
    password = secrets.token_urlsafe(18)
    (home / "secrets" / "airflow-password").write_text(password)
    (home / "secrets" / "passwords.json").write_text(json.dumps({"driftwood": password}))
    base = {
        **os.environ,
        "DRIFTWOOD_HOME": str(home),
        "DRIFTWOOD_CONTRACTS_DIR": str(contracts),
        "DRIFTWOOD_PII_KEY": secrets.token_hex(16),
        "MLFLOW_TRACKING_URI": MLFLOW,
    }
    for setting in (
        "DRIFTWOOD_LAKE_URI",
        "DRIFTWOOD_WAREHOUSE_URL",
        "DRIFTWOOD_MODEL_NAME",
        "DRIFTWOOD_EXPERIMENT",
    ):
        base.pop(setting, None)
    mlflow_env = {
        **base,
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    # MLflow's migrated empty database, when the project has one (scripts/mlflow.sh keeps it).
    template = ROOT / ".driftwood" / "cache" / "mlflow-empty.db"
    if template.exists():
        (home / "cache").mkdir()
        shutil.copy(template, home / "cache" / template.name)
    mlflow_sh = str(ROOT / "scripts" / "mlflow.sh")
    subprocess.run([mlflow_sh, "start", str(MLFLOW_PORT), str(home / "mlflow")], env=mlflow_env, check=True)
    env = airflow_home(
        "bench-landing",
        ROOT / "dags",
        {
            **{k: v for k, v in base.items() if k.startswith(("DRIFTWOOD_", "MLFLOW_"))},
            "DRIFTWOOD_RUNNER": "process",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "driftwood:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "secrets" / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{AIRFLOW}/execution/",
            "AIRFLOW__API__BASE_URL": f"{AIRFLOW}/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        },
    )
    logs = home / "process-logs"
    logs.mkdir()
    services = Services(env=env, logs=logs)
    api: subprocess.Popen[bytes] | None = None
    try:
        services.start("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(AIRFLOW_PORT)])
        services.start("scheduler", ["scheduler"])
        services.start("dag-processor", ["dag-processor"])
        api_env = {
            **base,
            "DRIFTWOOD_API_PORT": str(API_PORT),
            "DRIFTWOOD_API_AUTH": "none",
            "DRIFTWOOD_API_WEBHOOK_SECRET_FILE": str(hook_secret),
        }
        api = subprocess.Popen(
            ["node", str(ROOT / "tasks" / "dist" / "cli.js"), "serve"],
            env=api_env,
            stdout=(logs / "api.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "mlflow-webhook.py"),
                f"--tracking-uri={MLFLOW}",
                f"--url={API}/v1/hooks/mlflow",
                f"--secret-file={hook_secret}",
            ],
            check=True,
        )
        client = AirflowClient(AIRFLOW, "driftwood", password)

        def parsed() -> bool:
            services.assert_running()
            if client.token is None:
                client.login()
            return client.request("GET", f"/api/v2/dags/{DAG}")[0] == 200

        wait_for(f"Airflow with {DAG}", parsed, timeout=600, interval=2)
        client.request("PATCH", f"/api/v2/dags/{DAG}", {"is_paused": False})
        lander = {
            **base,
            "DRIFTWOOD_AIRFLOW_URL": AIRFLOW,
            "DRIFTWOOD_AIRFLOW_PASSWORD_FILE": str(home / "secrets" / "airflow-password"),
        }

        # The first champion, without Airflow: data up to two weeks in, a weak model on it.
        land(0, 2 * WEEK, base)
        until = (START.timestamp() + 2 * WEEK * 3600) * 1000
        as_of = datetime.fromtimestamp(until / 1000, UTC).isoformat()
        cli(["ingest", "--dataset", "churn", "--until", as_of], base)
        weak = ["--model", "logistic", "--solver", "adam", "--epochs", "1", "--learning-rate", "0.00001"]
        cli(["train", "--dataset", "churn", "--snapshot-as-of", as_of, *weak], base)
        cli(["evaluate", "--dataset", "churn"], base)
        cli(["promote", "--dataset", "churn", "--alias", "champion", "--min-auc", "0"], base)
        v1 = wait_for("the API to serve the first champion", served_version, timeout=120, interval=0.5)
        print(f"first champion v{v1}; landing the third week", flush=True)

        t0 = time.monotonic()
        wall0 = datetime.now(UTC)
        # The API is watched from the start of the landing, beside the run.
        seen: dict[str, Any] = {}

        def watch() -> None:
            while "version" not in seen and time.monotonic() - t0 < 1800:
                v = served_version()
                if v not in (None, v1):
                    seen.update(version=v, at=time.monotonic() - t0)
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        second = land(2 * WEEK, WEEK, lander)
        landed = time.monotonic() - t0
        run = pipeline_run(client, services, second["eventId"])
        _, tis = client.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run['dag_run_id'])}/taskInstances")
        if next(t for t in tis["task_instances"] if t["task_id"] == "promote")["state"] == "success":
            watcher.join(timeout=600)
        new, answered = seen.get("version"), seen.get("at")
        _, tis = client.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run['dag_run_id'])}/taskInstances")
        promote = next(t for t in tis["task_instances"] if t["task_id"] == "promote")

        def since(ts: str) -> float:
            return round((datetime.fromisoformat(ts) - wall0).total_seconds(), 1)

        print(
            json.dumps(
                {
                    "landed_s": round(landed, 1),
                    "run_queued_s": since(run["queued_at"]),
                    "run_started_s": since(run["start_date"]),
                    "promote": promote["state"],
                    "promote_done_s": since(promote["end_date"]),
                    "api_answers_new_version_s": None if answered is None else round(answered, 1),
                    "versions": [v1, new],
                    "as_of": second["asOf"],
                    "load_average": os.getloadavg(),
                },
                indent=2,
            )
        )
    finally:
        if api is not None:
            os.killpg(api.pid, 15)
            api.wait(timeout=30)
        services.stop()
        subprocess.run([mlflow_sh, "stop", str(MLFLOW_PORT)], env=mlflow_env, check=False)


if __name__ == "__main__":
    main()
