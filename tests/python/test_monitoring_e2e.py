"""The loop closed with real parts, from simulated customers to a retrain: the simulator makes three
weeks of churn activity that drifts from 2026-11-09 on (a price rise, plan moves, falling activity);
a champion is trained on the snapshot of the calm days and registered in a real MLflow; the real API
(``node tasks/dist/cli.js serve``) serves it; ``driftwood replay`` sends the customers' features as
of several times through the API, whose own prediction log is what the drift sidecar (its own venv,
real Evidently) reads, against the champion's training snapshot that it finds through MLflow. Calm
windows must trigger nothing (no false retrain); when drift holds in 2 of 3 windows the sidecar asks
a real Airflow 3 (API server, scheduler, DAG processor; LocalExecutor) for one ``churn_retrain`` run,
which trains and registers a new model version and runs the promotion gate.

The replay compresses time: each window is one replay, checked over its exact interval (``POST /run``
with ``start`` and ``end``). Only features that are stationary in a three-week simulation are
monitored (30- and 90-day aggregates keep growing while history accumulates)."""

from __future__ import annotations

import base64
import json
import os
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

AIRFLOW_PORT, SIDECAR_PORT, MLFLOW_PORT, API_PORT = 7640, 7641, 7642, 7643
BASE = f"http://127.0.0.1:{AIRFLOW_PORT}"
SIDECAR = f"http://127.0.0.1:{SIDECAR_PORT}"
API = f"http://127.0.0.1:{API_PORT}"
NUMERICAL = [
    "tenure_days",
    "monthly_charges",
    "sessions_3d",
    "sessions_7d",
    "minutes_7d",
    "tickets_7d",
    "hours_since_last_session",
    "avg_session_minutes_30d",
]
CATEGORICAL = ["plan", "region"]
DRIFT_START = "2026-11-09T00:00Z"
# As-of times of the replayed traffic: the training snapshot, calm days, then days after the drift.
TRAINED_AS_OF = "2026-11-07T00:00Z"
CALM_AS_OF = ["2026-11-07T12:00Z", "2026-11-08T00:00Z", "2026-11-08T12:00Z"]
DRIFTED_AS_OF = ["2026-11-13T12:00Z", "2026-11-14T00:00Z", "2026-11-14T12:00Z", "2026-11-15T00:00Z"]
PREDICTOR = ("replay", "replay-password-0123")


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
    except (urllib.error.URLError, ConnectionError):
        return 0, None


@pytest.fixture(scope="module")
def mlflow_uri() -> Iterator[str]:
    with mlflow_server(MLFLOW_PORT) as uri:
        yield uri


def prepare_data(env: dict[str, str], mlflow: str) -> dict[str, Any]:
    """Simulated lake → warehouse → snapshots, in the order time passes: the customers table holds
    current values only, so each snapshot is taken before the next days are loaded. The champion is
    trained on the calm snapshot and the alias set directly (promotion is tested elsewhere)."""
    cli(
        [
            "simulate",
            "--dataset",
            "churn",
            "--start",
            "2026-10-20T00:00Z",
            "--hours",
            "624",
            "--seed",
            "3",
            "--customers",
            "450",
            "--drift",
            "price:0.3,plan:0.4,activity:0.6",
            "--drift-start",
            DRIFT_START,
        ],
        env,
    )

    def snapshot(as_of: str) -> str:
        return str(cli(["snapshot", "--dataset", "churn", "--as-of", as_of], env)["id"])

    cli(["ingest", "--dataset", "churn", "--until", TRAINED_AS_OF], env)
    trained = snapshot(TRAINED_AS_OF)
    train = cli(["train", "--dataset", "churn", "--snapshot", trained], env)
    status, _ = http(
        "POST",
        f"{mlflow}/api/2.0/mlflow/registered-models/alias",
        {"name": env["DRIFTWOOD_MODEL_NAME"], "alias": "champion", "version": train["modelVersion"]},
    )
    assert status == 200
    cli(["ingest", "--dataset", "churn", "--until", "2026-11-09T00:00Z"], env)
    calm = [snapshot(t) for t in CALM_AS_OF]
    cli(["ingest", "--dataset", "churn", "--until", "2026-11-15T00:00Z"], env)
    drifted = [snapshot(t) for t in DRIFTED_AS_OF]
    return {"trained": trained, "champion": train["modelVersion"], "calm": calm, "drifted": drifted}


@pytest.fixture(scope="module")
def loop(mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("drift-loop")
    home = tmp / "home"
    step_env = {
        "DRIFTWOOD_HOME": str(home),
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "DRIFTWOOD_MODEL_NAME": f"churn-drift-{uuid.uuid4().hex[:8]}",
        "DRIFTWOOD_EXPERIMENT": f"drift-{uuid.uuid4().hex[:8]}",
        "DRIFTWOOD_PII_KEY": secrets.token_hex(16),
        "DRIFTWOOD_RUNNER": "process",
        # MLflow's own evaluation is tested in test_dag_factory.py; here it would only add half a
        # minute to every training run.
        "DRIFTWOOD_MLFLOW_EVALUATE": "off",
    }
    base_env = {**os.environ, **step_env}
    data = prepare_data(base_env, mlflow_uri)

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
    # The API: the champion from MLflow, Basic auth, its prediction log under DRIFTWOOD_HOME. It
    # does not poll the registry during the test, so every window is served by the version the
    # drift was measured against, even after the retrain promotes another.
    hashed = subprocess.run(
        ["node", str(ROOT / "serving" / "dist" / "bin" / "hash-password.js")],
        input=PREDICTOR[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    api_env = {
        **base_env,
        "DRIFTWOOD_API_HOST": "127.0.0.1",
        "DRIFTWOOD_API_PORT": str(API_PORT),
        "DRIFTWOOD_API_CREDENTIALS": f"{PREDICTOR[0]}:predict:{hashed}",
        "DRIFTWOOD_API_POLL_MS": "3600000",
    }
    # The sidecar: the reference comes from the registry (the served version's training snapshot).
    (tmp / "monitor.yaml").write_text(
        json.dumps(
            {
                "dataset": "churn",
                "predictions_dir": str(home / "predictions"),
                "lake_dir": str(home / "lake"),
                "champion": {"tracking_uri": mlflow_uri, "model_name": step_env["DRIFTWOOD_MODEL_NAME"]},
                "columns": {"numerical": NUMERICAL, "categorical": CATEGORICAL},
                "report_mode": "drift_only",
                "drift_share": 0.3,
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
    children: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, args: list[str], child_env: dict[str, str] | None = None) -> None:
        children.append(
            subprocess.Popen(
                args,
                cwd=ROOT,
                env=child_env,
                stdout=(tmp / f"{name}.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    spawn(
        "sidecar",
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
    )
    spawn("api", ["node", str(ROOT / "tasks" / "dist" / "cli.js"), "serve"], api_env)
    try:
        services.start(
            "api-server",
            ["api-server", "--host", "127.0.0.1", "--port", str(AIRFLOW_PORT), "--workers", "1"],
        )
        services.start("scheduler", ["scheduler"])
        services.start("dag-processor", ["dag-processor"])
        client = AirflowClient(BASE, "drift-monitor", password)

        def parsed() -> bool:
            services.assert_running()
            client.login()
            return client.request("GET", "/api/v2/dags/churn_retrain")[0] == 200

        def serving() -> bool:
            for child in children:
                assert child.poll() is None, (tmp / "api.log").read_text()[-3000:]
            return api_get("/v1/model")[0] == 200

        wait_for("the API with the champion loaded", serving, timeout=120, interval=1)
        wait_for("Airflow with churn_retrain parsed", parsed, timeout=300, interval=2)
        wait_for("the sidecar", lambda: http("GET", f"{SIDECAR}/health")[0] == 200, timeout=120, interval=1)
        yield {
            "client": client,
            "services": services,
            "tmp": tmp,
            "step_env": step_env,
            "mlflow": mlflow_uri,
            "data": data,
            "replay_env": {**base_env, "DRIFTWOOD_REPLAY_AUTH": ":".join(PREDICTOR)},
        }
    finally:
        for child in children:
            child.terminate()
            child.wait(timeout=30)
        services.stop()


def api_get(path: str) -> tuple[int, Any]:
    req = urllib.request.Request(API + path)
    req.add_header("Authorization", "Basic " + base64.b64encode(":".join(PREDICTOR).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as err:
        return err.code, None
    except (urllib.error.URLError, ConnectionError):
        return 0, None


def logged_lines(home: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in (home / "predictions").rglob("predictions.jsonl"))


def replay_window(loop: dict[str, Any], snapshot_id: str) -> dict[str, Any]:
    """One window of traffic: the snapshot's customers through the API, then one sidecar check over
    exactly the interval of that replay, once the API has flushed its log."""
    home = Path(loop["step_env"]["DRIFTWOOD_HOME"])
    before = logged_lines(home)
    start = datetime.now(UTC)
    sent = cli(
        [
            "replay",
            "--dataset",
            "churn",
            "--from",
            snapshot_id,
            "--api",
            API,
            "--rate",
            "2000",
            "--batch",
            "50",
        ],
        loop["replay_env"],
    )
    end = datetime.now(UTC) + timedelta(milliseconds=1)
    assert sent["predicted"] == sent["rows"] > 200
    assert sent["versions"] == {loop["data"]["champion"]: sent["rows"]}
    wait_for(
        "the prediction log", lambda: logged_lines(home) >= before + sent["rows"], timeout=30, interval=0.2
    )
    status, record = http("POST", f"{SIDECAR}/run", {"start": start.isoformat(), "end": end.isoformat()})
    assert status == 200, record
    # What the sidecar compared is exactly the traffic the API logged, against the champion's snapshot.
    assert record["rows"] == sent["rows"]
    assert record["reference"]["snapshot_id"] == loop["data"]["trained"]
    assert record["reference"]["model_version"] == loop["data"]["champion"]
    return dict(record)


def retrain_runs(client: AirflowClient) -> list[dict[str, Any]]:
    status, body = client.request("GET", "/api/v2/dags/churn_retrain/dagRuns")
    assert status == 200, body
    return list(body["dag_runs"])


def test_calm_traffic_then_drift_retrains_once_through_airflow(loop: dict[str, Any]) -> None:
    client: AirflowClient = loop["client"]
    services: Services = loop["services"]
    calm_ids, drifted_ids = loop["data"]["calm"], loop["data"]["drifted"]

    calm = [replay_window(loop, sid) for sid in calm_ids]
    assert [(r["dataset_drift"], r["action"]) for r in calm] == [(False, "no_drift")] * 3, [
        r.get("drift_share") for r in calm
    ]
    assert retrain_runs(client) == []  # no false retrain

    first = replay_window(loop, drifted_ids[0])
    assert (first["dataset_drift"], first["action"]) == (True, "no_drift")
    second = replay_window(loop, drifted_ids[1])
    assert (second["action"], second["delivered"]) == ("trigger", True), second
    run_id = f"drift__{second['report_id']}"
    [run] = retrain_runs(client)
    assert run["dag_run_id"] == run_id and run["conf"]["report_id"] == second["report_id"]
    # What moved is what the simulator changed: prices, the plan mix, activity; not the regions.
    moved = {f["column"] for f in second["features"] if f["drifted"]}
    assert {"monthly_charges", "plan", "sessions_3d"} <= moved and "region" not in moved

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
    assert train["modelVersion"] != loop["data"]["champion"]
    name = loop["step_env"]["DRIFTWOOD_MODEL_NAME"]
    with urllib.request.urlopen(
        f"{loop['mlflow']}/api/2.0/mlflow/model-versions/get?name={name}&version={train['modelVersion']}",
        timeout=30,
    ) as res:
        version = json.loads(res.read())["model_version"]
    assert version["run_id"] == train["runId"]
    assert ("champion" in version.get("aliases", [])) == (states["promote"] == "success")

    # Drift persists, but within the cooldown nothing more is sent.
    assert replay_window(loop, drifted_ids[2])["action"] == "no_drift"
    assert replay_window(loop, drifted_ids[3])["action"] == "cooldown"
    assert len(retrain_runs(client)) == 1
