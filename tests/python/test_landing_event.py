"""Files landing in the lake start the pipeline with no one posting anything: ``driftwood simulate``
lands hourly files through the lake's lander, which posts the dataset's raw asset event to a real
Airflow 3 (API server, scheduler with the LocalExecutor, DAG processor); the scheduler starts the
asset-scheduled pipeline, and the run's as-of is the newest landed partition's end, not the time it
ran. The pipeline here is the churn contract's with only its ingest step and no time schedule (a
contracts folder of the test's own), so the run is short and nothing else starts runs."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from orchestration_support import ROOT, AirflowClient, Services, airflow_home, group_alive, wait_for

API_PORT = 7680
BASE = f"http://127.0.0.1:{API_PORT}"
DAG = "churn_pipeline"
# Six hours from midnight: the newest partition is hr=05, whose end is the as-of.
START, HOURS = "2026-11-01T00:00Z", 6
PARTITION, AS_OF = "dt=2026-11-01/hr=05", "2026-11-01T06:00:00+00:00"


def ingest_only_contracts(folder: Path) -> Path:
    """The churn contract whose pipeline is ``ingest`` alone, started only by its raw asset."""
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "contracts" / "contract.schema.json", folder / "contract.schema.json")
    contract = yaml.safe_load((ROOT / "contracts" / "churn.yaml").read_text())
    contract["orchestration"] = {
        "pipeline": {"schedule": None, "steps": ["ingest"], "on_new_data": True},
        "retrain": {"enabled": False},
    }
    (folder / "churn.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("landing-home")
    secrets_dir = tmp_path_factory.mktemp("landing-secrets")
    password = secrets.token_urlsafe(18)
    passwords_file = secrets_dir / "passwords.json"
    passwords_file.write_text(json.dumps({"lander": password}))
    (secrets_dir / "lander-password").write_text(password + "\n")
    step_env = {
        "DRIFTWOOD_HOME": str(home),
        "DRIFTWOOD_CONTRACTS_DIR": str(ingest_only_contracts(home / "contracts")),
        "DRIFTWOOD_PII_KEY": secrets.token_hex(16),
        "DRIFTWOOD_RUNNER": "process",
    }
    env = airflow_home(
        "airflow-landing",
        ROOT / "dags",
        {
            **step_env,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            # `op` is the least role that may create asset events.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "lander:op",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{BASE}/execution/",
            "AIRFLOW__API__BASE_URL": f"{BASE}/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # Two cores shared with others: parse once, then rarely.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        },
    )
    for setting in ("DRIFTWOOD_LAKE_URI", "DRIFTWOOD_WAREHOUSE_URL", "DRIFTWOOD_AIRFLOW_URL"):
        env.pop(setting, None)
    logs = Path(env["AIRFLOW_HOME"]) / "process-logs"
    logs.mkdir()
    services = Services(env=env, logs=logs)
    try:
        services.start(
            "api-server", ["api-server", "--host", "127.0.0.1", "--port", str(API_PORT), "--workers", "1"]
        )
        services.start("scheduler", ["scheduler"])
        services.start("dag-processor", ["dag-processor"])
        client = AirflowClient(BASE, "lander", password)

        def parsed() -> bool:
            services.assert_running()
            if client.token is None:
                client.login()
            return client.request("GET", f"/api/v2/dags/{DAG}")[0] == 200

        wait_for(f"the API server and the parsed {DAG}", parsed, timeout=240, interval=2)
        status, dag = client.request("PATCH", f"/api/v2/dags/{DAG}", {"is_paused": False})
        assert status == 200 and dag["is_paused"] is False, dag
        yield {
            "client": client,
            "services": services,
            "env": env,
            "home": home,
            "password_file": secrets_dir / "lander-password",
        }
    finally:
        services.stop()
        leftovers = [name for name, proc in services.procs.items() if group_alive(proc.pid)]
        assert leftovers == [], f"process groups still alive: {leftovers}"


def simulate(stack: dict[str, Any]) -> dict[str, Any]:
    """The lander as a person runs it: the CLI, told where Airflow is and the file of its password."""
    env = {
        **os.environ,
        **{k: v for k, v in stack["env"].items() if k.startswith("DRIFTWOOD_")},
        "DRIFTWOOD_AIRFLOW_URL": BASE,
        "DRIFTWOOD_AIRFLOW_USER": "lander",
        "DRIFTWOOD_AIRFLOW_PASSWORD_FILE": str(stack["password_file"]),
    }
    args = ["simulate", "--dataset", "churn", "--start", START, "--hours", str(HOURS), "--customers", "60"]
    done = subprocess.run(
        ["node", str(ROOT / "tasks" / "dist" / "cli.js"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_landing_starts_the_pipeline_as_of_the_newest_landed_partition(stack: dict[str, Any]) -> None:
    client: AirflowClient = stack["client"]
    services: Services = stack["services"]

    landing = simulate(stack)["landing"]
    assert landing["posted"] is True, landing
    assert (landing["asset"], landing["partition"], landing["asOf"]) == (
        "driftwood://churn/raw",
        PARTITION,
        AS_OF,
    )

    # The event is in Airflow, carrying the partition and its as-of.
    status, assets = client.request("GET", "/api/v2/assets?uri_pattern=driftwood://churn/raw")
    assert status == 200, assets
    [asset_id] = [a["id"] for a in assets["assets"] if a["uri"] == "driftwood://churn/raw"]
    status, events = client.request("GET", f"/api/v2/assets/events?asset_id={asset_id}")
    assert status == 200, events
    [event] = events["asset_events"]
    assert event["id"] == landing["eventId"]
    assert event["extra"]["driftwood_partition"] == PARTITION
    assert event["extra"]["driftwood_as_of"] == AS_OF

    # The scheduler starts the pipeline on it.
    def asset_run() -> dict[str, Any] | None:
        services.assert_running()
        status, runs = client.request("GET", f"/api/v2/dags/{DAG}/dagRuns?run_type=asset_triggered")
        assert status == 200, runs
        return runs["dag_runs"][0] if runs["dag_runs"] else None

    run = wait_for("the scheduler to start the pipeline on the landing", asset_run, timeout=120, interval=1)
    run_id = quote(run["dag_run_id"])

    def finished() -> dict[str, Any] | None:
        services.assert_running()
        status, body = client.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}")
        assert status == 200, body
        return body if body["state"] in ("success", "failed") else None

    done = wait_for(f"{DAG} run to finish", finished, timeout=240, interval=2)
    # The run consumed the landing's event. Asked once the run is done: Airflow's endpoint (3.3.2) answers
    # 500 while a run it lists has no start date yet (AssetEventResponse requires one).
    status, consumed = client.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/upstreamAssetEvents")
    assert status == 200, consumed
    assert [e["id"] for e in consumed["asset_events"]] == [landing["eventId"]]
    status, ingest = client.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/ingest")
    assert status == 200, ingest
    assert done["state"] == "success", (ingest, services.tail("scheduler"))
    # The run's as-of is the landed partition's end, not the time the run started...
    assert ingest["rendered_fields"]["bash_command"].endswith(f"ingest --dataset churn --until '{AS_OF}'")
    assert run["run_after"] > AS_OF
    # ...and ingest loaded every landed hour, up to and including that partition.
    result = json.loads((stack["home"] / "results" / "ingest.json").read_text())
    loaded = sorted({f["key"].split("/")[2] + "/" + f["key"].split("/")[3] for f in result["files"]})
    assert loaded[-1] == PARTITION and len(loaded) == HOURS
