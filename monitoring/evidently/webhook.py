"""The retrain request: an HMAC-signed JSON POST, or an Airflow 3 DAG run through its REST API.

Signature (``kind: signed``): ``X-Driftwood-Timestamp: <unix seconds>`` and
``X-Driftwood-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``. The
timestamp is inside the signed text, so a receiver rejects replays by refusing old timestamps.
``X-Driftwood-Delivery`` is the report id, so a receiver can also drop duplicates.

Both kinds go through the one client in ``airflow_client.py`` (timeouts, bounded retries with
backoff on failed connections and 429/5xx, never on 4xx; Airflow's login renewed once on 401).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .airflow_client import AirflowClient, AirflowError, HttpClient, HttpSettings, Unreachable
from .config import WebhookConfig
from .contract import load_contract, retrain_dag_id
from .errors import MonitorError


@dataclass(frozen=True)
class Delivery:
    ok: bool
    status: int
    detail: str


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def _read_secret(path: str | None, setting: str) -> bytes:
    if not path:
        raise MonitorError("CONFIG_INVALID", f"setting {setting}: required")
    try:
        secret = Path(path).read_bytes().strip()
    except OSError as err:
        raise MonitorError(
            "CONFIG_INVALID", f"setting {setting}: cannot read {path} ({err.strerror})"
        ) from err
    if len(secret) < 16:
        raise MonitorError("CONFIG_INVALID", f"setting {setting}: the secret in {path} must be 16+ bytes")
    return secret


def _http(config: WebhookConfig) -> HttpClient:
    return HttpClient(HttpSettings.from_env(timeout_seconds=config.timeout_seconds))


def send_signed(config: WebhookConfig, payload: dict[str, Any], timestamp: str) -> Delivery:
    """Retried on a failed connection or a 429/5xx: the receiver drops a repeat by its delivery id."""
    secret = _read_secret(config.secret_file, "webhook.secret_file")
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Driftwood-Timestamp": timestamp,
        "X-Driftwood-Signature": sign(secret, timestamp, body),
        "X-Driftwood-Delivery": str(payload.get("report_id", "")),
    }
    try:
        reply = _http(config).send("POST", config.url, body, headers)
    except Unreachable as err:
        return Delivery(False, 0, str(err))
    return Delivery(reply.ok, reply.status, reply.text())


def _airflow(config: WebhookConfig) -> AirflowClient:
    password = _read_secret(config.password_file, "webhook.password_file").decode()
    return AirflowClient(config.url, config.username, password, _http(config))


def post_asset_event(config: WebhookConfig, payload: dict[str, Any]) -> Delivery:
    """An asset event on ``config.asset_uri`` (the asset the dataset's retrain DAG is scheduled on),
    with the report in ``extra``: GET /api/v2/assets?uri_pattern= for its id, then POST
    /api/v2/assets/events."""
    client = _airflow(config)
    try:
        asset = client.asset_id(config.asset_uri)
        if asset is None:
            return Delivery(False, 200, f"asset {config.asset_uri} not found (is its DAG parsed?)")
        reply = client.post_asset_event(asset, payload)
    except AirflowError as err:
        return Delivery(False, err.status, str(err.args[0]))
    except Unreachable as err:
        return Delivery(False, 0, str(err))
    return Delivery(reply.ok, reply.status, f"asset event: {reply.text(200)}")


def trigger_airflow(config: WebhookConfig, payload: dict[str, Any]) -> Delivery:
    """POST /auth/token, then POST /api/v2/dags/{dag_id}/dagRuns with the report in ``conf``. The run
    id is derived from the report id, so a retried trigger for the same report is refused by Airflow
    (409) instead of starting a second run; that counts as delivered. With ``asset_uri`` set, an
    asset event is posted instead."""
    if config.asset_uri:
        return post_asset_event(config, payload)
    # An alert's request (alerts.py) names its run after the incident, a drift check's after its report.
    prefix = "alert__" if payload.get("event") == "alert_firing" else "drift__"
    run_id = prefix + "".join(c if c.isalnum() or c in "-_." else "_" for c in str(payload["report_id"]))
    try:
        # No DAG configured: the reported dataset's retrain DAG, as its contract names it.
        dag_id = config.dag_id or retrain_dag_id(load_contract(str(payload["dataset"])))
    except MonitorError as err:
        return Delivery(False, 0, str(err))
    try:
        reply = _airflow(config).trigger_dag_run(dag_id, run_id, payload)
    except AirflowError as err:
        return Delivery(False, err.status, str(err.args[0]))
    except Unreachable as err:
        return Delivery(False, 0, str(err))
    return Delivery(reply.ok or reply.status == 409, reply.status, f"dag run {run_id}: {reply.text(200)}")


def deliver(config: WebhookConfig, payload: dict[str, Any], timestamp: str) -> Delivery:
    if config.kind == "signed":
        return send_signed(config, payload, timestamp)
    if config.kind == "airflow":
        return trigger_airflow(config, payload)
    return Delivery(False, 0, "webhook.kind is none: nothing sent")
