"""The drift sidecar's retrain request against a real Airflow 3 API server (simple auth manager,
real JWT): a ``churn_retrain`` DAG run carrying the report id, idempotent per report, and the
alternative asset event on ``driftwood://churn/drift``. Runs in .venvs/airflow (it needs Airflow);
the sidecar's webhook and its Airflow client (monitoring/evidently/airflow_client.py) are standard
library only."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from orchestration_support import ROOT, AirflowClient

sys.path.insert(0, str(ROOT))
from monitoring.evidently.airflow_client import AirflowClient as SidecarAirflowClient
from monitoring.evidently.airflow_client import HttpClient, HttpSettings
from monitoring.evidently.config import WebhookConfig
from monitoring.evidently.webhook import trigger_airflow

BASE = "http://127.0.0.1:7630"  # conftest.py's monitor_airflow


def hook(secrets_dir: Path, **kw: Any) -> WebhookConfig:
    return WebhookConfig(
        kind="airflow",
        url=BASE,
        username="drift-monitor",
        password_file=str(secrets_dir / "monitor-password"),
        **kw,
    )


PAYLOAD = {"event": "drift_detected", "dataset": "churn", "report_id": "churn-20261120T110000Z"}


def test_a_drift_trigger_creates_one_churn_retrain_run_per_report(monitor_airflow: dict[str, Any]) -> None:
    client: AirflowClient = monitor_airflow["client"]
    first = trigger_airflow(hook(monitor_airflow["secrets"]), PAYLOAD)
    assert (first.ok, first.status) == (True, 200), first.detail
    again = trigger_airflow(hook(monitor_airflow["secrets"]), PAYLOAD)
    assert (again.ok, again.status) == (True, 409), again.detail
    status, body = client.request("GET", "/api/v2/dags/churn_retrain/dagRuns")
    assert status == 200
    # Other tests sharing this server start alert__… runs; this report made exactly one drift__ run.
    drift = [r for r in body["dag_runs"] if r["dag_run_id"].startswith("drift__")]
    assert [r["dag_run_id"] for r in drift] == ["drift__churn-20261120T110000Z"]
    assert drift[0]["conf"]["report_id"] == PAYLOAD["report_id"]


def test_a_wrong_password_is_a_failed_delivery_not_a_crash(monitor_airflow: dict[str, Any]) -> None:
    bad = hook(monitor_airflow["secrets"])
    bad = WebhookConfig(
        **{**bad.__dict__, "password_file": str(monitor_airflow["secrets"] / "wrong-password")}
    )
    got = trigger_airflow(bad, {**PAYLOAD, "report_id": "churn-other"})
    assert (got.ok, got.status) == (False, 401) and got.detail.startswith("auth/token")


def test_the_asset_event_mode_posts_on_the_drift_asset(monitor_airflow: dict[str, Any]) -> None:
    client: AirflowClient = monitor_airflow["client"]
    got = trigger_airflow(hook(monitor_airflow["secrets"], asset_uri="driftwood://churn/drift"), PAYLOAD)
    assert got.ok, got.detail
    status, body = client.request("GET", "/api/v2/assets/events")
    assert status == 200
    events = [e for e in body["asset_events"] if e["uri"] == "driftwood://churn/drift"]
    assert [e["extra"]["report_id"] for e in events] == [PAYLOAD["report_id"]]
    missing = trigger_airflow(hook(monitor_airflow["secrets"], asset_uri="driftwood://nope"), PAYLOAD)
    assert not missing.ok and "not found" in missing.detail


def test_the_sidecar_client_renews_an_expired_token(monitor_airflow: dict[str, Any]) -> None:
    import jwt

    client = SidecarAirflowClient(
        BASE, "drift-monitor", monitor_airflow["password"], HttpClient(HttpSettings(retries=1))
    )
    assert client.asset_id("driftwood://churn/drift") is not None
    assert client.logins == 1
    # The same token as Airflow issued it, signed with its secret, but expired an hour ago: 401.
    header = jwt.get_unverified_header(client.token)
    claims = jwt.decode(client.token, options={"verify_signature": False})
    now = int(time.time())
    claims.update({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600})
    client.token = jwt.encode(claims, monitor_airflow["jwt_secret"], algorithm=header["alg"], headers=header)
    reply = client.request("GET", "/api/v2/dags/churn_retrain")
    assert (reply.status, client.logins) == (200, 2), reply.text()
    assert reply.json()["dag_id"] == "churn_retrain"
