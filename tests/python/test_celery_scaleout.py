"""Scale-out with the CeleryExecutor: the scheduler, the DAG processor and the API server send work
through the local Redis (its own database index, flushed before and after) to two ``airflow celery
worker`` processes with distinct names, with a throwaway database on the local PostgreSQL as the
metadata database and Celery result backend. One run of a DAG with independent tasks must be
executed by both workers, as read back from the task instances' ``hostname``.

Both workers share this machine, so each reports its own name as its host (``[core]
hostname_callable`` = ``orchestration_support.worker_hostname``, from ``DRIFTWOOD_WORKER_HOSTNAME``)
the way two machines would report theirs.

The stack is this module's own, not the session's ``airflow_service``: the executor is a deployment's
setting, the Celery workers and the broker would sit idle beside every other test there, and the other
tests check the single-machine deployment with the LocalExecutor."""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from orchestration_support import (
    ROOT,
    AirflowClient,
    Services,
    airflow_home,
    group_alive,
    postgres_database,
    postgres_database_exists,
    wait_for,
)

API_PORT = 7820
BASE = f"http://127.0.0.1:{API_PORT}"
# A Redis database index of its own: the test flushes only this one.
REDIS_URL = os.environ.get("DRIFTWOOD_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
WORKERS = ("worker-a", "worker-b")
DAG_ID = "driftwood_celery_fanout"
TASKS = [f"part_{n}" for n in range(6)]

# Independent tasks that each hold a worker slot for a few seconds and return who ran them.
FANOUT_DAG = f'''
"""Independent tasks for the scale-out test: each returns the worker it ran on."""
import os
import time

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def fanout():
    for name in {TASKS!r}:

        @task(task_id=name)
        def part():
            time.sleep(4)
            return os.environ["DRIFTWOOD_WORKER_HOSTNAME"]

        part()


fanout()
'''


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    dags = tmp_path_factory.mktemp("celery-dags")
    (dags / "fanout.py").write_text(FANOUT_DAG)
    password = secrets.token_urlsafe(18)
    passwords_file = ROOT / ".driftwood" / "test" / "airflow-celery" / "passwords.json"
    _flush_redis()
    with postgres_database("airflow_celery") as db_url:
        env = airflow_home(
            "airflow-celery",
            dags,
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{db_url}",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "orchestration_support.worker_hostname",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "driftwood:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{BASE}/execution/",
                "AIRFLOW__API__BASE_URL": f"{BASE}/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                # Every Airflow process imports the hostname callable from here.
                "PYTHONPATH": f"{ROOT / 'dags'}:{ROOT / 'tests' / 'python'}",
            },
        )
        passwords_file.write_text(json.dumps({"driftwood": password}))
        passwords_file.chmod(0o600)
        logs = Path(env["AIRFLOW_HOME"]) / "process-logs"
        logs.mkdir()
        services = Services(env=env, logs=logs)
        try:
            services.start_airflow(["api-server", "scheduler", "dag-processor"], API_PORT)
            for name in WORKERS:
                # One slot each, so that parallel tasks must spread over both; no log server (port clash).
                services.env = {**env, "DRIFTWOOD_WORKER_HOSTNAME": name}
                worker = ["celery", "worker", "--celery-hostname", name, "--concurrency", "1"]
                services.start(name, [*worker, "--skip-serve-logs"])
            services.env = env
            client = AirflowClient(BASE, "driftwood", password)

            def ready() -> bool:
                services.assert_running()
                if not all(f"{name} ready." in services.tail(name, 100_000) for name in WORKERS):
                    return False
                status, _ = client.request("GET", f"/api/v2/dags/{DAG_ID}")
                return status == 200

            wait_for("both Celery workers and the parsed DAG", ready, timeout=240, interval=2)
            yield {"client": client, "services": services, "db_url": db_url}
        finally:
            services.stop()
            leftovers = [name for name, proc in services.procs.items() if group_alive(proc.pid)]
            _flush_redis()
            assert leftovers == [], f"process groups still alive: {leftovers}"
    assert not postgres_database_exists(db_url.rsplit("/", 1)[1])


def test_tasks_of_one_run_are_executed_by_both_celery_workers(celery_stack: dict[str, Any]) -> None:
    client: AirflowClient = celery_stack["client"]
    services: Services = celery_stack["services"]
    run_id = f"scaleout__{uuid.uuid4().hex[:12]}"
    status, created = client.request(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": None}
    )
    assert status == 200, created

    def finished() -> dict[str, Any] | None:
        services.assert_running()
        status, run = client.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id)}")
        assert status == 200, run
        return run if run["state"] in ("success", "failed") else None

    run = wait_for(f"run {run_id} to finish", finished, timeout=240, interval=2)
    status, body = client.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id)}/taskInstances")
    assert status == 200, body
    tis = {ti["task_id"]: ti for ti in body["task_instances"]}
    assert run["state"] == "success", (tis, services.tail("scheduler"))
    assert sorted(tis) == TASKS
    assert all(ti["state"] == "success" for ti in tis.values()), tis

    by_worker: dict[str, list[str]] = {}
    for task_id, ti in sorted(tis.items()):
        by_worker.setdefault(ti["hostname"], []).append(task_id)
        # What the task saw itself agrees with what its worker reported to the API server.
        status, xcom = client.request(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/xcomEntries/return_value",
        )
        assert status == 200, xcom
        assert xcom["value"] in (ti["hostname"], json.dumps(ti["hostname"])), (xcom, ti["hostname"])
    print("\ntasks per Celery worker:", json.dumps(by_worker, indent=2))
    assert sorted(by_worker) == sorted(WORKERS), by_worker
