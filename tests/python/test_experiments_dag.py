"""The daily A/B look: one real `airflow dags test` of `churn_experiments` (process runner, the built
CLI, a real MLflow server) looks at the dataset's running experiment as of the run's logical date and
records the look on its MLflow run, and leaves another dataset's experiment alone. (That a second look
as of the same date adds none, and what a `promote` decision does, is tested in
tests/integration/experiments-daily.test.ts with the step's own function.)"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestration_support import ROOT, airflow_home, mlflow_server, run_airflow

DAGS = ROOT / "dags"
MLFLOW_PORT = 7494
STARTED = "2026-11-01T00:00:00.000Z"
LOGICAL_DATE = "2026-11-03T06:00:00+00:00"


def _mlflow(base: str, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    url = f"{base}/api/2.0/mlflow/{path}"
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


def declare(base: str, experiment_id: str, name: str, dataset: str) -> str:
    """An experiment as the API records it (tasks/src/experiments/record.ts): a running MLflow run
    whose tags carry the declaration with the versions its variants were pinned to."""
    run = _mlflow(
        base,
        "POST",
        "runs/create",
        {"experiment_id": experiment_id, "run_name": name, "start_time": int(time.time() * 1000)},
    )["run"]
    run_id = run["info"]["run_id"]
    variants = [
        {"name": "control", "model": "champion", "allocation": 0.5},
        {"name": "treatment", "model": "2", "allocation": 0.5},
    ]
    record = {
        "declaration": {
            "name": name,
            "dataset": dataset,
            "variants": variants,
            "control": "control",
            "unit": "customer",
            "primary_metric": "brier",
            "minimum_sample": 100,
            "stop_rule": {"max_days": 28},
            "alpha": 0.05,
            "mixture_sd": 0.02,
            "on_decision": "record",
        },
        "model_name": dataset,
        "variants": [{**v, "version": str(i + 1)} for i, v in enumerate(variants)],
        "started_at": STARTED,
        "run_id": run_id,
        "status": "running",
    }
    tags = {
        "driftwood.ab.experiment": name,
        "driftwood.ab.dataset": dataset,
        "driftwood.ab.status": "running",
        "driftwood.ab.declaration": json.dumps(record),
    }
    _mlflow(
        base,
        "POST",
        "runs/log-batch",
        {"run_id": run_id, "tags": [{"key": k, "value": v} for k, v in tags.items()]},
    )
    return run_id


def tags_of(base: str, run_id: str) -> dict[str, str]:
    run = _mlflow(base, "GET", f"runs/get?run_id={run_id}")["run"]
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def metric_history(base: str, run_id: str, key: str) -> list[dict[str, Any]]:
    found = _mlflow(base, "GET", f"metrics/get-history?run_id={run_id}&metric_key={key}")
    return list(found.get("metrics", []))


@pytest.fixture(scope="module")
def daily_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("experiments-home")
    suffix = secrets.token_hex(3)
    with mlflow_server(MLFLOW_PORT) as mlflow_uri:
        experiment_id = _mlflow(mlflow_uri, "POST", "experiments/create", {"name": "driftwood-ab"})[
            "experiment_id"
        ]
        ours = declare(mlflow_uri, experiment_id, f"daily-{suffix}", "churn")
        theirs = declare(mlflow_uri, experiment_id, f"elsewhere-{suffix}", "parcels")
        env = airflow_home(
            "airflow-experiments-dag",
            DAGS,
            {
                "DRIFTWOOD_RUNNER": "process",
                "DRIFTWOOD_HOME": str(home),
                "DRIFTWOOD_CONTRACTS_DIR": str(ROOT / "contracts"),
                "MLFLOW_TRACKING_URI": mlflow_uri,
                "DRIFTWOOD_PII_KEY": secrets.token_hex(16),
                "LOG_LEVEL": "info",
            },
        )
        for setting in ("DRIFTWOOD_WAREHOUSE_URL", "DRIFTWOOD_LAKE_URI", "DRIFTWOOD_DATASET"):
            env.pop(setting, None)
        result = run_airflow(["dags", "test", "churn_experiments", LOGICAL_DATE], env, timeout=600)
        db = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
        try:
            states = dict(
                db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = 'churn_experiments'")
            )
        finally:
            db.close()
        yield {
            "result": result,
            "states": states,
            "home": home,
            "mlflow": mlflow_uri,
            "ours": ours,
            "theirs": theirs,
            "ours_tags": tags_of(mlflow_uri, ours),
            "theirs_tags": tags_of(mlflow_uri, theirs),
            "looks": metric_history(mlflow_uri, ours, "look"),
            "their_looks": metric_history(mlflow_uri, theirs, "look"),
        }


def test_the_dag_looks_at_the_running_experiment_as_of_its_logical_date(daily_run: dict[str, Any]) -> None:
    output = daily_run["result"].stdout + daily_run["result"].stderr
    assert daily_run["states"] == {"experiment": "success"}, output[-6000:]
    # One look, counted as look 1 and stamped with the run's logical date (not the wall clock).
    assert [(m["value"], int(m["step"])) for m in daily_run["looks"]] == [(1.0, 1)]
    analysis = json.loads(daily_run["ours_tags"]["driftwood.ab.analysis"])
    assert analysis["analysed_at"] == "2026-11-03T06:00:00.000Z"
    # No prediction was logged: the look is recorded, and the experiment goes on.
    assert daily_run["ours_tags"]["driftwood.ab.decision"] == "inconclusive"
    assert daily_run["ours_tags"]["driftwood.ab.status"] == "running"
    assert analysis["reason"].startswith("collecting: 0 labelled customers")


def test_the_step_reports_every_look_and_leaves_other_datasets_alone(daily_run: dict[str, Any]) -> None:
    result = json.loads((daily_run["home"] / "results" / "experiment.json").read_text())
    assert result["dataset"] == "churn" and result["as_of"] == "2026-11-03T06:00:00.000Z"
    assert [(look["experiment"], look["looked"]) for look in result["looks"]] == [
        (json.loads(daily_run["ours_tags"]["driftwood.ab.declaration"])["declaration"]["name"], True)
    ]
    assert daily_run["their_looks"] == []
    assert "driftwood.ab.analysis" not in daily_run["theirs_tags"]
