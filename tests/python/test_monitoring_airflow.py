"""The drift sidecar's retrain request against a real Airflow 3 API server (simple auth manager,
real JWT): a ``churn_retrain`` DAG run carrying the report id, idempotent per report, and the
alternative asset event on ``driftwood://churn/drift``. Runs in .venvs/airflow (it needs Airflow);
the sidecar's webhook and its Airflow client (monitoring/evidently/airflow_client.py) are standard
library only."""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestration_support import ROOT, AirflowClient, Services, airflow_home, run_airflow, wait_for

sys.path.insert(0, str(ROOT))
from monitoring.evidently.airflow_client import AirflowClient as SidecarAirflowClient
from monitoring.evidently.airflow_client import HttpClient, HttpSettings
from monitoring.evidently.config import WebhookConfig
from monitoring.evidently.webhook import trigger_airflow

API_PORT = 7630
BASE = f"http://127.0.0.1:{API_PORT}"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
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
            "AIRFLOW__API__BASE_URL": f"{BASE}/",
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
            "api-server", ["api-server", "--host", "127.0.0.1", "--port", str(API_PORT), "--workers", "1"]
        )
        client = AirflowClient(BASE, "drift-monitor", password)

        def ready() -> bool:
            services.assert_running()
            client.login()
            return client.request("GET", "/api/v2/dags/churn_retrain")[0] == 200

        wait_for("the Airflow API server with churn_retrain", ready, timeout=240, interval=2)
        yield {"client": client, "secrets": secrets_dir, "password": password, "jwt_secret": jwt_secret}
    finally:
        services.stop()


def hook(secrets_dir: Path, **kw: Any) -> WebhookConfig:
    return WebhookConfig(
        kind="airflow",
        url=BASE,
        username="drift-monitor",
        password_file=str(secrets_dir / "monitor-password"),
        **kw,
    )


PAYLOAD = {"event": "drift_detected", "dataset": "churn", "report_id": "churn-20261120T110000Z"}


def test_a_drift_trigger_creates_one_churn_retrain_run_per_report(airflow: dict[str, Any]) -> None:
    client: AirflowClient = airflow["client"]
    first = trigger_airflow(hook(airflow["secrets"]), PAYLOAD)
    assert (first.ok, first.status) == (True, 200), first.detail
    again = trigger_airflow(hook(airflow["secrets"]), PAYLOAD)
    assert (again.ok, again.status) == (True, 409), again.detail
    status, body = client.request("GET", "/api/v2/dags/churn_retrain/dagRuns")
    assert status == 200
    runs = [r for r in body["dag_runs"] if r["dag_run_id"] == "drift__churn-20261120T110000Z"]
    assert len(runs) == 1 and runs[0]["conf"]["report_id"] == PAYLOAD["report_id"]
    assert body["total_entries"] == 1


def test_a_wrong_password_is_a_failed_delivery_not_a_crash(airflow: dict[str, Any]) -> None:
    bad = hook(airflow["secrets"])
    bad = WebhookConfig(**{**bad.__dict__, "password_file": str(airflow["secrets"] / "wrong-password")})
    got = trigger_airflow(bad, {**PAYLOAD, "report_id": "churn-other"})
    assert (got.ok, got.status) == (False, 401) and got.detail.startswith("auth/token")


def test_the_asset_event_mode_posts_on_the_drift_asset(airflow: dict[str, Any]) -> None:
    client: AirflowClient = airflow["client"]
    got = trigger_airflow(hook(airflow["secrets"], asset_uri="driftwood://churn/drift"), PAYLOAD)
    assert got.ok, got.detail
    status, body = client.request("GET", "/api/v2/assets/events")
    assert status == 200
    events = [e for e in body["asset_events"] if e["uri"] == "driftwood://churn/drift"]
    assert [e["extra"]["report_id"] for e in events] == [PAYLOAD["report_id"]]
    missing = trigger_airflow(hook(airflow["secrets"], asset_uri="driftwood://nope"), PAYLOAD)
    assert not missing.ok and "not found" in missing.detail


def test_the_sidecar_client_renews_an_expired_token(airflow: dict[str, Any]) -> None:
    import jwt

    client = SidecarAirflowClient(
        BASE, "drift-monitor", airflow["password"], HttpClient(HttpSettings(retries=1))
    )
    assert client.asset_id("driftwood://churn/drift") is not None
    assert client.logins == 1
    # The same token as Airflow issued it, signed with its secret, but expired an hour ago: 401.
    header = jwt.get_unverified_header(client.token)
    claims = jwt.decode(client.token, options={"verify_signature": False})
    now = int(time.time())
    claims.update({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600})
    client.token = jwt.encode(claims, airflow["jwt_secret"], algorithm=header["alg"], headers=header)
    reply = client.request("GET", "/api/v2/dags/churn_retrain")
    assert (reply.status, client.logins) == (200, 2), reply.text()
    assert reply.json()["dag_id"] == "churn_retrain"
