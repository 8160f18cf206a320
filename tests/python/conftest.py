"""Airflow reads its configuration at import: keep the example DAGs out and the metadata under the
project's test folder before any test module imports it.

Two Airflows are shared by the whole session: ``monitor_airflow`` (an API server alone, for the tests
that ask Airflow for a retrain) and ``airflow_service`` (API server, scheduler with the LocalExecutor and
DAG processor on a PostgreSQL metadata database, for the tests that watch Airflow run the project's
DAGs). The tests that use them run last, so their processes start once and are not left idling beside
the other tests."""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestration_support import (
    AirflowClient,
    AirflowService,
    Services,
    airflow_home,
    airflow_service_contracts,
    group_alive,
    mlflow_server,
    postgres_database,
    postgres_database_exists,
    run_airflow,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".driftwood" / "test" / "airflow-pytest"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

MONITOR_AIRFLOW_PORT = 7630


@pytest.fixture(scope="session")
def monitor_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One Airflow 3 API server (simple auth manager, real JWT, the project's DAGs serialised, no
    scheduler: runs are created, not executed) for every test that asks Airflow for a retrain: the
    sidecar's webhook (test_monitoring_airflow.py) and Alertmanager's route (test_alert_retrain.py)."""
    base = f"http://127.0.0.1:{MONITOR_AIRFLOW_PORT}"
    secrets_dir = tmp_path_factory.mktemp("monitor-secrets")
    password = secrets.token_urlsafe(18)
    jwt_secret = secrets.token_hex(32)
    passwords_file = secrets_dir / "passwords.json"
    passwords_file.write_text(json.dumps({"drift-monitor": password}))
    (secrets_dir / "monitor-password").write_text(password + "\n")
    (secrets_dir / "wrong-password").write_text(secrets.token_urlsafe(18))
    env = airflow_home(
        "airflow-monitoring",
        ROOT / "dags",
        {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "drift-monitor:op",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__API__BASE_URL": f"{base}/",
            "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        },
    )
    # Serialise the DAGs (and their assets) into the database once; no DAG processor needed.
    done = run_airflow(["dags", "reserialize"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    logs = Path(env["AIRFLOW_HOME"]) / "process-logs"
    logs.mkdir()
    services = Services(env=env, logs=logs)
    try:
        services.start_airflow(["api-server"], MONITOR_AIRFLOW_PORT)
        client = AirflowClient(base, "drift-monitor", password)

        def ready() -> bool:
            services.assert_running()
            client.login()
            return client.request("GET", "/api/v2/dags/churn_retrain")[0] == 200

        wait_for("the Airflow API server with churn_retrain", ready, timeout=240, interval=2)
        yield {
            "base": base,
            "client": client,
            "secrets": secrets_dir,
            "password": password,
            "jwt_secret": jwt_secret,
        }
    finally:
        services.stop()


# --- one Airflow that runs DAGs, shared by the service tests ------------------------------------------

AIRFLOW_SERVICE_PORT = 7800
AIRFLOW_SERVICE_MLFLOW_PORT = 7810
# The processes started, in this order; a test that needs another one (the triggerer for deferred
# tasks and asset watchers) adds it here, and every test gets it.
AIRFLOW_SERVICE_COMPONENTS = ("api-server", "scheduler", "dag-processor")
# Simple auth manager users and their roles. `op` is the least role that may create asset events (the
# lander); a viewer may not trigger runs.
AIRFLOW_SERVICE_USERS = {"driftwood": "admin", "watcher": "viewer", "lander": "op"}
# DAGs the tests wait for before they start: the DAG processor parses the DAG folder once.
AIRFLOW_SERVICE_DAGS = ("churn_pipeline", "churn_retrain")
# Taken from the caller's shell by neither the session's Airflow nor the steps run beside it: the lake
# and the warehouse are in its DRIFTWOOD_HOME unless `airflow_service_extra_env` says otherwise, and a
# step run by hand posts to no other Airflow.
UNSHARED_SETTINGS = ("DRIFTWOOD_LAKE_URI", "DRIFTWOOD_WAREHOUSE_URL", "DRIFTWOOD_AIRFLOW_URL")


@pytest.fixture(scope="session")
def airflow_service_mlflow() -> Iterator[str]:
    with mlflow_server(AIRFLOW_SERVICE_MLFLOW_PORT) as uri:
        yield uri


@pytest.fixture(scope="session")
def airflow_service_extra_env() -> dict[str, str]:
    """Settings added to the session's Airflow processes (and to its steps' environment): the place for
    what a test's own service needs them to know, e.g. a queue's URL from a session fixture that starts
    its emulator (redefine this fixture here, depending on that one)."""
    return {}


@pytest.fixture(scope="session")
def airflow_service(
    airflow_service_mlflow: str,
    airflow_service_extra_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AirflowService]:
    """Airflow as a service, started once a session: the API server, the scheduler (LocalExecutor) and
    the DAG processor (``AIRFLOW_SERVICE_COMPONENTS``) as real processes, the simple auth manager with
    generated passwords, metadata in a throwaway PostgreSQL database (dropped at the end), the project's
    DAG folder, and steps run by the process runner in one DRIFTWOOD_HOME. DAGs are paused at creation:
    each test unpauses the ones it runs. Every process group is stopped at the end."""
    base = f"http://127.0.0.1:{AIRFLOW_SERVICE_PORT}"
    home = tmp_path_factory.mktemp("airflow-service-home")
    secrets_dir = tmp_path_factory.mktemp("airflow-service-secrets")
    passwords = {user: secrets.token_urlsafe(18) for user in AIRFLOW_SERVICE_USERS}
    for user, password in passwords.items():
        (secrets_dir / f"{user}-password").write_text(password + "\n")
    passwords_file = secrets_dir / "passwords.json"
    passwords_file.write_text(json.dumps(passwords))
    passwords_file.chmod(0o600)
    step_env = {
        "DRIFTWOOD_HOME": str(home),
        "DRIFTWOOD_CONTRACTS_DIR": str(airflow_service_contracts(home / "contracts")),
        "MLFLOW_TRACKING_URI": airflow_service_mlflow,
        "DRIFTWOOD_MODEL_NAME": f"churn-airflow-{uuid.uuid4().hex[:8]}",
        "DRIFTWOOD_EXPERIMENT": f"airflow-{uuid.uuid4().hex[:8]}",
        "DRIFTWOOD_PII_KEY": secrets.token_hex(16),
        "DRIFTWOOD_RUNNER": "process",
        # MLflow's own evaluation is tested in test_dag_factory.py; here it would only add half a
        # minute to every training run.
        "DRIFTWOOD_MLFLOW_EVALUATE": "off",
        **airflow_service_extra_env,
    }
    with postgres_database("airflow_test") as metadata_db:
        env = airflow_home(
            "airflow-service",
            ROOT / "dags",
            {
                **step_env,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "2",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                    f"{user}:{role}" for user, role in AIRFLOW_SERVICE_USERS.items()
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
                "AIRFLOW__API__BASE_URL": f"{base}/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
                # New DAGs are paused by default in production; the tests unpause through the API.
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                # Two cores shared with others: parse once, then rarely.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            },
        )
        for setting in set(UNSHARED_SETTINGS) - set(step_env):
            env.pop(setting, None)
        cli_env = {k: v for k, v in os.environ.items() if k not in UNSHARED_SETTINGS} | step_env
        logs = Path(env["AIRFLOW_HOME"]) / "process-logs"
        logs.mkdir()
        services = Services(env=env, logs=logs)
        try:
            services.start_airflow(AIRFLOW_SERVICE_COMPONENTS, AIRFLOW_SERVICE_PORT)
            client = AirflowClient(base, "driftwood", passwords["driftwood"])

            def parsed() -> bool:
                services.assert_running()
                if client.token is None:
                    client.login()
                return all(client.request("GET", f"/api/v2/dags/{d}")[0] == 200 for d in AIRFLOW_SERVICE_DAGS)

            dags = ", ".join(AIRFLOW_SERVICE_DAGS)
            wait_for(f"the API server and the parsed {dags}", parsed, timeout=240, interval=2)
            yield AirflowService(
                base=base,
                env=env,
                step_env=cli_env,
                home=home,
                services=services,
                metadata_db=metadata_db,
                mlflow=airflow_service_mlflow,
                secrets=secrets_dir,
            )
        finally:
            services.stop()
            leftovers = [name for name, proc in services.procs.items() if group_alive(proc.pid)]
            assert leftovers == [], f"process groups still alive: {leftovers}"
    assert not postgres_database_exists(metadata_db.rsplit("/", 1)[1])


# Session fixtures run processes until the session ends: their tests go last, the heaviest last of all.
LAST = ("monitor_airflow", "airflow_service")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests of each ``LAST`` fixture together at the end (each group in its order): its processes
    start for the first of them and stop when the session ends, so they never run idle beside the other
    tests; ``monitor_airflow``'s lone API server idles only while ``airflow_service``'s tests run."""

    def rank(item: pytest.Item) -> int:
        used = getattr(item, "fixturenames", ())
        return max((n + 1 for n, name in enumerate(LAST) if name in used), default=0)

    items.sort(key=rank)
