"""The loop closed with real parts: the drift sidecar (its own venv, real Evidently) reads a
prediction log, and when drift holds in 2 of 3 windows it asks a real Airflow 3 (API server,
scheduler, DAG processor; LocalExecutor) for a ``churn_retrain`` run, which trains and registers a
new model version in a real MLflow and runs the promotion gate. Calm windows first: they must
trigger nothing (no false retrain).

What is not real here: the prediction log is written by the test (the API's log format, from a
seeded generator) rather than by replayed traffic through the API, and the reference is a CSV of
rows from the same generator rather than the champion's training snapshot."""

from __future__ import annotations

import csv
import json
import os
import random
import secrets
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from orchestration_support import ROOT, AirflowClient, Services, airflow_home, mlflow_server, wait_for

API_PORT, SIDECAR_PORT, MLFLOW_PORT = 7640, 7641, 7642
BASE = f"http://127.0.0.1:{API_PORT}"
SIDECAR = f"http://127.0.0.1:{SIDECAR_PORT}"
T0 = datetime(2026, 11, 20, 8, tzinfo=UTC)
NUMERICAL = ["tenure_days", "monthly_charges", "sessions_30d", "tickets_30d"]
CATEGORICAL = ["plan", "region"]


def rows(n: int, seed: int, shift: float) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    plans = ["basic", "plus", "pro"]
    weights = [0.5 - 0.3 * shift, 0.3, 0.2 + 0.3 * shift]
    return [
        {
            "tenure_days": rng.gammavariate(2.0, 200.0) * (1 + shift),
            "monthly_charges": rng.gauss(50 + 40 * shift, 12),
            "sessions_30d": float(round(rng.gammavariate(4, 5 * (1 + shift)))),
            "tickets_30d": float(round(rng.expovariate(1 / (1 + 3 * shift)))),
            "plan": rng.choices(plans, weights)[0],
            "region": rng.choice(["north", "south", "east", "west"]),
            "probability": min(1.0, rng.betavariate(2, 5) + 0.3 * shift),
        }
        for _ in range(n)
    ]


def write_window(predictions: Path, hour: int, data: list[dict[str, Any]]) -> None:
    start = T0 + timedelta(hours=hour)
    part = predictions / f"dt={start:%Y-%m-%d}" / f"hr={start:%H}"
    part.mkdir(parents=True, exist_ok=True)
    with (part / "predictions.jsonl").open("w") as fh:
        for i, r in enumerate(data):
            features = {k: v for k, v in r.items() if k != "probability"}
            ts = start + timedelta(seconds=3600 * i / len(data))
            fh.write(
                json.dumps(
                    {
                        "ts": ts.isoformat().replace("+00:00", "Z"),
                        "request_id": f"r{hour}-{i}",
                        "model": {"name": "churn", "version": "1", "alias": "champion"},
                        "served": True,
                        "customer_token": None,
                        "features": features,
                        "probability": r["probability"],
                        "label": int(r["probability"] >= 0.5),
                    }
                )
                + "\n"
            )


def cli(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(ROOT / "tasks" / "dist" / "cli.js"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


@pytest.fixture(scope="module")
def mlflow_uri() -> Iterator[str]:
    with mlflow_server(MLFLOW_PORT) as uri:
        yield uri


@pytest.fixture(scope="module")
def loop(mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("drift-loop")
    step_env = {
        "DRIFTWOOD_HOME": str(tmp / "home"),
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "DRIFTWOOD_MODEL_NAME": f"churn-drift-{uuid.uuid4().hex[:8]}",
        "DRIFTWOOD_EXPERIMENT": f"drift-{uuid.uuid4().hex[:8]}",
        "DRIFTWOOD_PII_KEY": secrets.token_hex(16),
        "DRIFTWOOD_RUNNER": "process",
    }
    base_env = {**os.environ, **step_env}
    cli(
        [
            "simulate",
            "--dataset",
            "churn",
            "--start",
            "2026-11-01T00:00Z",
            "--hours",
            "120",
            "--seed",
            "3",
            "--customers",
            "450",
        ],
        base_env,
    )
    cli(["ingest", "--dataset", "churn", "--until", "2026-11-06T00:00Z"], base_env)

    password = secrets.token_urlsafe(18)
    passwords_file = tmp / "passwords.json"
    passwords_file.write_text(json.dumps({"drift-monitor": password}))
    (tmp / "monitor-password").write_text(password)
    env = airflow_home(
        "airflow-monitoring-e2e",
        ROOT / "dags",
        {
            **step_env,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "drift-monitor:op",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{BASE}/execution/",
            "AIRFLOW__API__BASE_URL": f"{BASE}/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        },
    )
    # The sidecar: reference and config; it runs in its own venv, like its container.
    with (tmp / "reference.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, [*NUMERICAL, *CATEGORICAL, "probability"])
        w.writeheader()
        w.writerows(rows(3000, seed=1, shift=0.0))
    (tmp / "monitor.yaml").write_text(
        json.dumps(
            {
                "dataset": "churn",
                "predictions_dir": str(tmp / "predictions"),
                "lake_dir": str(tmp / "lake"),
                "reference": str(tmp / "reference.csv"),
                "columns": {"numerical": NUMERICAL, "categorical": CATEGORICAL},
                "report_mode": "drift_only",
                "decision": {"k": 2, "n": 3, "min_rows": 200, "cooldown_minutes": 360},
                "webhook": {
                    "kind": "airflow",
                    "url": BASE,
                    "dag_id": "churn_retrain",
                    "username": "drift-monitor",
                    "password_file": str(tmp / "monitor-password"),
                },
            }
        )
    )
    logs = Path(env["AIRFLOW_HOME"]) / "process-logs"
    logs.mkdir()
    services = Services(env=env, logs=logs)
    sidecar_log = (tmp / "sidecar.log").open("wb")
    sidecar = subprocess.Popen(
        [
            str(ROOT / ".venvs" / "evidently" / "bin" / "python"),
            "-m",
            "monitoring.evidently",
            "--config",
            str(tmp / "monitor.yaml"),
            "--host",
            "127.0.0.1",
            "--port",
            str(SIDECAR_PORT),
        ],
        cwd=ROOT,
        stdout=sidecar_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        services.start(
            "api-server", ["api-server", "--host", "127.0.0.1", "--port", str(API_PORT), "--workers", "1"]
        )
        services.start("scheduler", ["scheduler"])
        services.start("dag-processor", ["dag-processor"])
        client = AirflowClient(BASE, "drift-monitor", password)

        def parsed() -> bool:
            services.assert_running()
            client.login()
            return client.request("GET", "/api/v2/dags/churn_retrain")[0] == 200

        wait_for("Airflow with churn_retrain parsed", parsed, timeout=300, interval=2)
        wait_for("the sidecar", lambda: http("GET", f"{SIDECAR}/health")[0] == 200, timeout=120, interval=1)
        yield {"client": client, "services": services, "tmp": tmp, "step_env": step_env, "mlflow": mlflow_uri}
    finally:
        sidecar.terminate()
        sidecar.wait(timeout=30)
        services.stop()


def run_window(hour: int) -> dict[str, Any]:
    status, record = http("POST", f"{SIDECAR}/run", {"end": (T0 + timedelta(hours=hour + 1)).isoformat()})
    assert status == 200, record
    return record


def retrain_runs(client: AirflowClient) -> list[dict[str, Any]]:
    status, body = client.request("GET", "/api/v2/dags/churn_retrain/dagRuns")
    assert status == 200, body
    return body["dag_runs"]


def test_calm_traffic_then_drift_retrains_once_through_airflow(loop: dict[str, Any]) -> None:
    client: AirflowClient = loop["client"]
    services: Services = loop["services"]
    predictions = loop["tmp"] / "predictions"
    for hour in range(3):
        write_window(predictions, hour, rows(600, seed=10 + hour, shift=0.0))
    for hour in (3, 4):
        write_window(predictions, hour, rows(600, seed=10 + hour, shift=0.6))

    calm = [run_window(h) for h in range(3)]
    assert [(r["dataset_drift"], r["action"]) for r in calm] == [(False, "no_drift")] * 3
    assert retrain_runs(client) == []  # no false retrain

    first = run_window(3)
    assert (first["dataset_drift"], first["action"]) == (True, "no_drift")
    second = run_window(4)
    assert (second["action"], second["delivered"]) == ("trigger", True), second
    run_id = f"drift__{second['report_id']}"
    [run] = retrain_runs(client)
    assert run["dag_run_id"] == run_id and run["conf"]["report_id"] == second["report_id"]

    def finished() -> dict[str, Any] | None:
        services.assert_running()
        status, got = client.request("GET", f"/api/v2/dags/churn_retrain/dagRuns/{quote(run_id)}")
        assert status == 200, got
        return got if got["state"] in ("success", "failed") else None

    done = wait_for("the churn_retrain run", finished, timeout=600, interval=3)
    status, tis = client.request("GET", f"/api/v2/dags/churn_retrain/dagRuns/{quote(run_id)}/taskInstances")
    assert status == 200, tis
    states = {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}
    assert done["state"] == "success", (states, services.tail("scheduler"))
    assert states["train"] == "success" and states["promote"] in ("success", "skipped")

    # A new model version, registered from the retrain's MLflow run; the gate decided the alias.
    train = json.loads((Path(loop["step_env"]["DRIFTWOOD_HOME"]) / "results" / "train.json").read_text())
    name = loop["step_env"]["DRIFTWOOD_MODEL_NAME"]
    with urllib.request.urlopen(
        f"{loop['mlflow']}/api/2.0/mlflow/model-versions/get?name={name}&version={train['modelVersion']}",
        timeout=30,
    ) as res:
        version = json.loads(res.read())["model_version"]
    assert version["run_id"] == train["runId"]
    assert ("champion" in version.get("aliases", [])) == (states["promote"] == "success")

    # Drift persists, but within the cooldown nothing more is sent.
    write_window(predictions, 5, rows(600, seed=16, shift=0.6))
    write_window(predictions, 6, rows(600, seed=17, shift=0.6))
    assert run_window(5)["action"] == "no_drift"
    assert run_window(6)["action"] == "cooldown"
    assert len(retrain_runs(client)) == 1
