"""Files landing in an S3 lake start their dataset's pipeline through the bucket's notifications, with no
one posting anything: a real moto server (S3 + SQS), ``scripts/lake-notifications.py`` sending the lake's
raw-file notifications to a queue, and a real Airflow 3 (API server, scheduler, DAG processor, triggerer)
whose ``churn_raw`` asset has the queue's watcher (``DRIFTWOOD_LAKE_QUEUE_URL``). An object under
``raw/churn/`` starts ``churn_pipeline`` as of its partition's end; one under ``raw/churn2/`` (a name
that shares the prefix's start) starts nothing and stays on the queue for its own dataset. The pipeline
is the churn contract's ``ingest`` alone, with no time schedule."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from orchestration_support import ROOT, AirflowClient, Services, airflow_home, group_alive, wait_for

API_PORT = 7690
DAG = "churn_pipeline"
BUCKET, LAKE = "lake", "s3://lake/landing"
KEY = "landing/raw/churn/dt=2026-11-01/hr=05/customers.csv"
OTHER_KEY = "landing/raw/churn2/dt=2026-11-01/hr=09/customers.csv"
AS_OF = "2026-11-01T06:00:00+00:00"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def queue_contracts(folder: Path) -> Path:
    """The churn contract alone, its pipeline ``ingest`` started only by its raw asset."""
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
    import boto3

    home = tmp_path_factory.mktemp("lake-queue-home")
    endpoint = f"http://127.0.0.1:{free_port()}"
    aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    moto = subprocess.Popen(
        [
            str(ROOT / ".venvs" / "tools" / "bin" / "moto_server"),
            "-H",
            "127.0.0.1",
            "-p",
            endpoint.rsplit(":", 1)[1],
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    services: Services | None = None
    try:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        s3 = session.client("s3", endpoint_url=endpoint)
        sqs = session.client("sqs", endpoint_url=endpoint)
        wait_for("moto", lambda: s3.list_buckets() is not None, timeout=60, interval=0.5)
        s3.create_bucket(Bucket=BUCKET)
        queue_url = sqs.create_queue(QueueName="lake-events")["QueueUrl"]
        # Twice: the second run sets the same notification, not a second one.
        for _ in range(2):
            done = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "scripts" / "lake-notifications.py"),
                    "--lake",
                    LAKE,
                    "--queue-url",
                    queue_url,
                ],
                env={**os.environ, **aws},
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-3000:]
        notifications = s3.get_bucket_notification_configuration(Bucket=BUCKET)["QueueConfigurations"]
        assert [(n["Id"], n["Filter"]["Key"]["FilterRules"][0]["Value"]) for n in notifications] == [
            ("driftwood-raw", "landing/raw/")
        ]

        password = secrets.token_urlsafe(18)
        (home / "passwords.json").write_text(json.dumps({"lander": password}))
        base = f"http://127.0.0.1:{API_PORT}"
        env = airflow_home(
            "airflow-lake-queue",
            ROOT / "dags",
            {
                **aws,
                "DRIFTWOOD_HOME": str(home),
                "DRIFTWOOD_CONTRACTS_DIR": str(queue_contracts(home / "contracts")),
                "DRIFTWOOD_PII_KEY": secrets.token_hex(16),
                "DRIFTWOOD_RUNNER": "process",
                "DRIFTWOOD_LAKE_URI": LAKE,
                "DRIFTWOOD_LAKE_QUEUE_URL": queue_url,
                "DRIFTWOOD_S3_ENDPOINT": endpoint,
                "DRIFTWOOD_S3_PATH_STYLE": "true",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "2",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "lander:op",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
                "AIRFLOW__API__BASE_URL": f"{base}/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
                # Unpaused from its first parse: the DAG processor registers an asset's watchers only for a
                # DAG that is active and not paused, and parses again only every ten minutes here.
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                # Two cores shared with others: parse once, then rarely.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            },
        )
        for setting in ("DRIFTWOOD_WAREHOUSE_URL", "DRIFTWOOD_AIRFLOW_URL"):
            env.pop(setting, None)
        logs = Path(env["AIRFLOW_HOME"]) / "process-logs"
        logs.mkdir()
        services = Services(env=env, logs=logs)
        services.start(
            "api-server", ["api-server", "--host", "127.0.0.1", "--port", str(API_PORT), "--workers", "1"]
        )
        for name in ("scheduler", "dag-processor", "triggerer"):
            services.start(name, [name])
        client = AirflowClient(base, "lander", password)
        running = services

        def parsed() -> bool:
            running.assert_running()
            return client.request("GET", f"/api/v2/dags/{DAG}")[0] == 200

        wait_for(f"the API server and the parsed {DAG}", parsed, timeout=240, interval=2)
        # The triggerer polls the queue for the asset's watcher.
        wait_for(
            "the triggerer to run the watcher's SQS trigger",
            lambda: (
                running.assert_running()
                or "SqsSensor checking for message" in running.tail("triggerer", 200_000)
            ),
            timeout=180,
            interval=1,
        )
        yield {"client": client, "services": services, "s3": s3, "sqs": sqs, "queue_url": queue_url}
    finally:
        if services is not None:
            services.stop()
        moto.terminate()
        moto.wait(timeout=30)
        if services is not None:
            # The run's ingest may still be going when the test ends: its killed processes take a
            # moment to be reaped.
            procs = services.procs
            wait_for(
                "the Airflow process groups to end",
                lambda: not [name for name, proc in procs.items() if group_alive(proc.pid)],
                timeout=30,
                interval=0.5,
            )


def test_an_object_under_the_raw_prefix_starts_the_pipeline_as_of_its_partition(
    stack: dict[str, Any],
) -> None:
    client: AirflowClient = stack["client"]
    services: Services = stack["services"]

    def asset_runs() -> list[dict[str, Any]]:
        services.assert_running()
        status, runs = client.request("GET", f"/api/v2/dags/{DAG}/dagRuns?run_type=asset_triggered")
        assert status == 200, runs
        return list(runs["dag_runs"])

    # Another dataset's file first: had it matched, the run's as-of would be its 10:00.
    stack["s3"].put_object(Bucket=BUCKET, Key=OTHER_KEY, Body=b"customer_id\n1\n")
    put_at = time.monotonic()
    stack["s3"].put_object(Bucket=BUCKET, Key=KEY, Body=b"customer_id\n1\n")
    [run] = wait_for("the watcher's event to start the pipeline", asset_runs, timeout=120, interval=0.5)
    print(f"object put → {DAG} run created: {time.monotonic() - put_at:.1f} s")

    # The asset's one event holds the churn object's notification, and nothing of churn2's.
    status, assets = client.request("GET", "/api/v2/assets?uri_pattern=driftwood://churn/raw")
    assert status == 200, assets
    [asset_id] = [a["id"] for a in assets["assets"] if a["uri"] == "driftwood://churn/raw"]

    # Airflow 3.3's events endpoint answers 500 while a run the event created is still queued (its
    # start_date is None, which the response model rejects): read the events once the run started.
    def events_read() -> tuple[int, Any] | None:
        answer = client.request("GET", f"/api/v2/assets/events?asset_id={asset_id}")
        return answer if answer[0] != 500 else None

    status, events = wait_for("the asset's events once its run started", events_read, timeout=120)
    assert status == 200, events
    [event] = events["asset_events"]
    assert event["extra"]["from_trigger"] is True
    bodies = [json.loads(m["Body"]) for m in event["extra"]["payload"]["message_batch"]]
    keys = [r["s3"]["object"]["key"] for b in bodies for r in b["Records"]]
    assert [k.replace("%2F", "/").replace("%3D", "=") for k in keys] == [KEY]

    # The run's as-of is the notified partition's end, not the time it ran.
    run_id = quote(run["dag_run_id"])

    def ingest_rendered() -> dict[str, Any] | None:
        services.assert_running()
        status, ti = client.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/ingest")
        assert status == 200, ti
        return ti if ti.get("rendered_fields", {}).get("bash_command") else None

    ingest = wait_for("ingest to be rendered", ingest_rendered, timeout=180, interval=1)
    assert ingest["rendered_fields"]["bash_command"].endswith(f"ingest --dataset churn --until '{AS_OF}'")
    assert run["run_after"] > AS_OF

    # churn2's notification was left on the queue for its own dataset's watcher.
    attributes = stack["sqs"].get_queue_attributes(
        QueueUrl=stack["queue_url"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert (
        int(attributes["ApproximateNumberOfMessages"])
        + int(attributes["ApproximateNumberOfMessagesNotVisible"])
        == 1
    )
    assert len(asset_runs()) == 1
