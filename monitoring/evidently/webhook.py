"""The retrain request: an HMAC-signed JSON POST, or an Airflow 3 DAG run through its REST API.

Signature (``kind: signed``): ``X-Driftwood-Timestamp: <unix seconds>`` and
``X-Driftwood-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``. The
timestamp is inside the signed text, so a receiver rejects replays by refusing old timestamps.
``X-Driftwood-Delivery`` is the report id, so a receiver can also drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import WebhookConfig
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


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        return 0, str(getattr(err, "reason", err)).encode()


def send_signed(config: WebhookConfig, payload: dict[str, Any], timestamp: str) -> Delivery:
    secret = _read_secret(config.secret_file, "webhook.secret_file")
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {
        "X-Driftwood-Timestamp": timestamp,
        "X-Driftwood-Signature": sign(secret, timestamp, body),
        "X-Driftwood-Delivery": str(payload.get("report_id", "")),
    }
    status, reply = _post(config.url, body, headers, config.timeout_seconds)
    return Delivery(200 <= status < 300, status, reply[:300].decode(errors="replace"))


def _airflow_token(config: WebhookConfig) -> tuple[str | None, Delivery | None]:
    password = _read_secret(config.password_file, "webhook.password_file").decode()
    status, reply = _post(
        f"{config.url.rstrip('/')}/auth/token",
        json.dumps({"username": config.username, "password": password}).encode(),
        {},
        config.timeout_seconds,
    )
    if status not in (200, 201):
        return None, Delivery(False, status, f"auth/token: {reply[:200].decode(errors='replace')}")
    return str(json.loads(reply)["access_token"]), None


def _get(url: str, token: str, timeout: float) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        return 0, str(getattr(err, "reason", err)).encode()


def post_asset_event(config: WebhookConfig, payload: dict[str, Any]) -> Delivery:
    """An asset event on ``config.asset_uri`` (the asset ``churn_retrain`` is scheduled on), with the
    report in ``extra``: GET /api/v2/assets?uri_pattern= for its id, then POST /api/v2/assets/events."""
    token, failed = _airflow_token(config)
    if token is None:
        return failed or Delivery(False, 0, "no token")
    base = config.url.rstrip("/")
    status, reply = _get(
        f"{base}/api/v2/assets?{urllib.parse.urlencode({'uri_pattern': config.asset_uri})}",
        token,
        config.timeout_seconds,
    )
    assets = json.loads(reply).get("assets", []) if status == 200 else []
    match = [a for a in assets if a.get("uri") == config.asset_uri]
    if not match:
        return Delivery(False, status, f"asset {config.asset_uri} not found (is its DAG parsed?)")
    body = json.dumps({"asset_id": match[0]["id"], "extra": payload}).encode()
    status, reply = _post(
        f"{base}/api/v2/assets/events", body, {"Authorization": f"Bearer {token}"}, config.timeout_seconds
    )
    return Delivery(200 <= status < 300, status, f"asset event: {reply[:200].decode(errors='replace')}")


def trigger_airflow(config: WebhookConfig, payload: dict[str, Any]) -> Delivery:
    """POST /auth/token, then POST /api/v2/dags/{dag_id}/dagRuns with the report in ``conf``. The run
    id is derived from the report id, so a retried trigger for the same report is refused by Airflow
    (409) instead of starting a second run; that counts as delivered. With ``asset_uri`` set, an
    asset event is posted instead."""
    if config.asset_uri:
        return post_asset_event(config, payload)
    token, failed = _airflow_token(config)
    if token is None:
        return failed or Delivery(False, 0, "no token")
    base = config.url.rstrip("/")
    run_id = "drift__" + "".join(c if c.isalnum() or c in "-_." else "_" for c in str(payload["report_id"]))
    body = json.dumps({"dag_run_id": run_id, "logical_date": None, "conf": payload}).encode()
    status, reply = _post(
        f"{base}/api/v2/dags/{config.dag_id}/dagRuns",
        body,
        {"Authorization": f"Bearer {token}"},
        config.timeout_seconds,
    )
    ok = 200 <= status < 300 or status == 409
    return Delivery(ok, status, f"dag run {run_id}: {reply[:200].decode(errors='replace')}")


def deliver(config: WebhookConfig, payload: dict[str, Any], timestamp: str) -> Delivery:
    if config.kind == "signed":
        return send_signed(config, payload, timestamp)
    if config.kind == "airflow":
        return trigger_airflow(config, payload)
    return Delivery(False, 0, "webhook.kind is none: nothing sent")
