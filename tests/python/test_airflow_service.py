"""Airflow as a service: the API server, the scheduler (LocalExecutor) and the DAG processor run as
real processes on this machine, with the simple auth manager and a generated password file, and keep
their metadata in a throwaway database on the local PostgreSQL (the session's ``airflow_service``,
started once for every test that needs it; its database is dropped after). The tests log in for a JWT,
trigger ``churn_retrain`` over REST, wait for the scheduler to run the real CLI steps (process runner)
against a real MLflow server, check the effects in MLflow, and post an asset event that starts another
run. Every process is stopped by process group at the end."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from orchestration_support import ROOT, AirflowClient, AirflowService, Services, wait_for

RESULTS = ROOT / ".driftwood" / "test" / "results"


def _cli(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(ROOT / "tasks" / "dist" / "cli.js"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def stack(airflow_service: AirflowService) -> dict[str, Any]:
    """The session's Airflow, with data in its warehouse before the retrain: five simulated days, small
    enough to train in seconds."""
    step_env = airflow_service.step_env
    sim = ["simulate", "--dataset", "churn", "--start", "2026-11-01T00:00Z", "--hours", "120"]
    _cli([*sim, "--seed", "1", "--customers", "490"], step_env)
    _cli(["ingest", "--dataset", "churn", "--until", "2026-11-06T00:00Z"], step_env)
    return {
        "client": airflow_service.client("driftwood"),
        "services": airflow_service.services,
        "env": airflow_service.env,
        "step_env": step_env,
        "mlflow": airflow_service.mlflow,
        "metadata_db": airflow_service.metadata_db,
        "base": airflow_service.base,
    }


def _wait_run_done(client: AirflowClient, dag_id: str, run_id: str, services: Services) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        services.assert_running()
        status, run = client.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}")
        assert status == 200, run
        return run if run["state"] in ("success", "failed") else None

    return wait_for(f"{dag_id} run {run_id} to finish", finished, timeout=300, interval=2)


def _task_instances(client: AirflowClient, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    status, body = client.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances")
    assert status == 200, body
    return {ti["task_id"]: ti for ti in body["task_instances"]}


def test_the_api_refuses_requests_without_a_valid_token(stack: dict[str, Any]) -> None:
    anonymous = AirflowClient(stack["base"], "driftwood", "wrong-password")
    status, _ = anonymous._send("GET", "/api/v2/dags")
    assert status == 401
    with pytest.raises(RuntimeError, match="POST /auth/token: HTTP 401"):
        anonymous.login()


def test_a_viewer_cannot_trigger_a_run(stack: dict[str, Any]) -> None:
    passwords = json.loads(
        Path(stack["env"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).read_text()
    )
    viewer = AirflowClient(stack["base"], "watcher", passwords["watcher"])
    status, _ = viewer.request("POST", "/api/v2/dags/churn_retrain/dagRuns", {"logical_date": None})
    assert status == 403


def test_a_rest_trigger_runs_churn_retrain_to_a_new_model_version_in_mlflow(stack: dict[str, Any]) -> None:
    client: AirflowClient = stack["client"]
    services: Services = stack["services"]
    status, dag = client.request("PATCH", "/api/v2/dags/churn_retrain", {"is_paused": False})
    assert status == 200 and dag["is_paused"] is False, dag

    run_id = f"rest__{uuid.uuid4().hex[:12]}"
    payload = {"dag_run_id": run_id, "logical_date": None, "conf": {"reason": "operator request"}}
    status, created = client.request("POST", "/api/v2/dags/churn_retrain/dagRuns", payload)
    assert status == 200, created
    assert created["dag_run_id"] == run_id
    assert created["run_type"] == "manual"
    assert created["conf"] == {"reason": "operator request"}
    # The run id makes a caller's retry safe; a payload with unknown fields is refused, not guessed at.
    status, _ = client.request("POST", "/api/v2/dags/churn_retrain/dagRuns", payload)
    assert status == 409
    status, refused = client.request("POST", "/api/v2/dags/churn_retrain/dagRuns", {**payload, "priority": 1})
    assert status == 422, refused

    run = _wait_run_done(client, "churn_retrain", run_id, services)
    tis = _task_instances(client, "churn_retrain", run_id)
    assert run["state"] == "success", (tis, services.tail("scheduler"))
    assert tis["train"]["state"] == "success"
    # The gate decides promote: success moves the alias, skipped (exit 99) leaves it.
    assert tis["promote"]["state"] in ("success", "skipped")

    # The effects, read back from MLflow: the version the train task registered, from its run.
    train = json.loads((Path(stack["step_env"]["DRIFTWOOD_HOME"]) / "results" / "train.json").read_text())
    version = _mlflow_get(
        stack["mlflow"],
        f"/api/2.0/mlflow/model-versions/get?name={stack['step_env']['DRIFTWOOD_MODEL_NAME']}&version={train['modelVersion']}",
    )["model_version"]
    assert version["run_id"] == train["runId"]
    mlflow_run = _mlflow_get(stack["mlflow"], f"/api/2.0/mlflow/runs/get?run_id={train['runId']}")["run"]
    assert mlflow_run["info"]["status"] == "FINISHED"
    # Trained on the snapshot of the newest data, materialised in the lake: the version names it.
    tags = {t["key"]: t["value"] for t in mlflow_run["data"].get("tags", [])}
    lake = Path(stack["step_env"]["DRIFTWOOD_HOME"]) / "lake"
    assert (lake / "snapshots" / "churn" / tags["driftwood.snapshot_id"] / "manifest.json").is_file()
    aliases = version.get("aliases", [])
    assert ("champion" in aliases) == (tis["promote"]["state"] == "success")

    # The run's record is in the PostgreSQL metadata database the processes were given.
    assert _metadata_run_state(stack["metadata_db"], run_id) == "success"

    _record_overhead(client, run_id, tis)


def test_an_asset_event_posted_over_rest_starts_a_retrain(stack: dict[str, Any]) -> None:
    client: AirflowClient = stack["client"]
    services: Services = stack["services"]
    status, assets = client.request("GET", "/api/v2/assets?uri_pattern=driftwood://churn/drift")
    assert status == 200, assets
    [asset] = [a for a in assets["assets"] if a["uri"] == "driftwood://churn/drift"]
    status, event = client.request(
        "POST", "/api/v2/assets/events", {"asset_id": asset["id"], "extra": {"source": "drift-monitor"}}
    )
    assert status == 200, event
    assert event["asset_id"] == asset["id"]

    def asset_run() -> dict[str, Any] | None:
        services.assert_running()
        status, runs = client.request("GET", "/api/v2/dags/churn_retrain/dagRuns?run_type=asset_triggered")
        assert status == 200, runs
        return runs["dag_runs"][0] if runs["dag_runs"] else None

    run = wait_for("the scheduler to create an asset-triggered run", asset_run, timeout=120, interval=2)
    assert run["run_type"] == "asset_triggered"
    done = _wait_run_done(client, "churn_retrain", run["dag_run_id"], services)
    assert done["state"] == "success", _task_instances(client, "churn_retrain", run["dag_run_id"])


def _metadata_run_state(sqlalchemy_url: str, run_id: str) -> str | None:
    import psycopg2

    conn = psycopg2.connect(sqlalchemy_url.replace("postgresql+psycopg2://", "postgresql://", 1))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT state FROM dag_run WHERE dag_id = 'churn_retrain' AND run_id = %s", (run_id,))
            row = cur.fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def _mlflow_get(base: str, path: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(base.rstrip("/") + path, timeout=30) as res:
        return json.loads(res.read())


def _record_overhead(client: AirflowClient, run_id: str, tis: dict[str, dict[str, Any]]) -> None:
    """Prints (and keeps) queued → running → done per task, minus the step's own time from its log."""
    from datetime import datetime

    rows = []
    for task_id, ti in tis.items():
        status, log = client.request(
            "GET",
            f"/api/v2/dags/churn_retrain/dagRuns/{quote(run_id)}/taskInstances/{task_id}/logs/1?full_content=true",
        )
        step_seconds = _step_seconds(json.dumps(log)) if status == 200 else None
        queued = datetime.fromisoformat(ti["queued_when"])
        start = datetime.fromisoformat(ti["start_date"])
        end = datetime.fromisoformat(ti["end_date"])
        total = (end - queued).total_seconds()
        rows.append(
            {
                "task": task_id,
                "state": ti["state"],
                "queued_to_running_s": round((start - queued).total_seconds(), 2),
                "running_s": round((end - start).total_seconds(), 2),
                "step_s": step_seconds,
                "overhead_s": None if step_seconds is None else round(total - step_seconds, 2),
            }
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "airflow-overhead.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\norchestration overhead (LocalExecutor, process runner):", json.dumps(rows, indent=2))


def _step_seconds(log_text: str) -> float | None:
    """The CLI's own duration: its `seconds=N` log line (success), or None if absent (skipped)."""
    import re

    found = re.findall(r'seconds(?:\\?":\s*|=)([0-9.]+)', log_text)
    return float(found[-1]) if found else None
