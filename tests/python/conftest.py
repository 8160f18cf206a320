"""Airflow reads its configuration at import: keep the example DAGs out and the metadata under the
project's test folder before any test module imports it."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestration_support import AirflowClient, Services, airflow_home, run_airflow, wait_for

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
        services.start(
            "api-server",
            ["api-server", "--host", "127.0.0.1", "--port", str(MONITOR_AIRFLOW_PORT), "--workers", "1"],
        )
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
