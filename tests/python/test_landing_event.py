"""Files landing in the lake start the pipeline with no one posting anything: ``driftwood simulate``
lands hourly files through the lake's lander, which posts the dataset's raw asset event to a real
Airflow 3 (the session's ``airflow_service``: API server, scheduler with the LocalExecutor, DAG
processor); the scheduler starts the asset-scheduled pipeline, and the run's as-of is the newest landed
partition's end, not the time it ran. The pipeline there is the churn contract's with only its ingest
step and no time schedule, so the run is short and nothing else starts its runs. The landed hours are
older than the data other tests of that Airflow simulate into the same lake, so they are new files
whichever runs first."""

from __future__ import annotations

import json
import subprocess
from typing import Any
from urllib.parse import quote

import pytest
from orchestration_support import ROOT, AirflowClient, AirflowService, Services, wait_for

DAG = "churn_pipeline"
# Six hours from midnight: the newest partition is hr=05, whose end is the as-of.
START, HOURS = "2026-10-25T00:00Z", 6
PARTITION, AS_OF = "dt=2026-10-25/hr=05", "2026-10-25T06:00:00+00:00"


@pytest.fixture(scope="module")
def stack(airflow_service: AirflowService) -> dict[str, Any]:
    """The session's Airflow with the pipeline unpaused, and the lander's credentials."""
    client = airflow_service.client("lander")
    status, dag = client.request("PATCH", f"/api/v2/dags/{DAG}", {"is_paused": False})
    assert status == 200 and dag["is_paused"] is False, dag
    return {
        "client": client,
        "services": airflow_service.services,
        "step_env": airflow_service.step_env,
        "base": airflow_service.base,
        "home": airflow_service.home,
        "password_file": airflow_service.password_file("lander"),
    }


def simulate(stack: dict[str, Any]) -> dict[str, Any]:
    """The lander as a person runs it: the CLI, told where Airflow is and the file of its password."""
    env = {
        **stack["step_env"],
        "DRIFTWOOD_AIRFLOW_URL": stack["base"],
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
