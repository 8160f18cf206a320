"""Alertmanager's webhook as a retrain request: ``POST /alerts`` with its JSON (payload version 4,
https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).

The rules (monitoring/README.md, "When a retrain starts") are the sidecar's own: an alert starts
the dataset's retrain DAG only when it is firing, carries ``action: retrain`` and this sidecar's
``dataset``, and no retrain request of any source (a drift check's or an alert's) was delivered
within ``decision.cooldown_minutes`` (``decision.cooldown_until``). Its DAG run is named after the
incident (alert name, fingerprint, start), so a repeat Airflow already has is a 409, not a second
run. ``decide_alert`` is pure; ``receive_alerts`` applies it, sends through the sidecar's webhook,
records every decision in the decision log and counts it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from .config import MonitorConfig
from .decision import DecisionPolicy, LastTrigger, cooldown_until
from .errors import MonitorError
from .monitor import MonitorDeps, append_decision, last_trigger

log = logging.getLogger("driftwood.monitor")

Outcome = Literal["trigger", "resolved", "cooldown", "not_retrain", "other_dataset"]
# How long a notification waits for a drift check in progress before Alertmanager is asked to retry.
LOCK_SECONDS = 30.0


@dataclass(frozen=True)
class Alert:
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    fingerprint: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def incident(self) -> str:
        """One firing of one alert: the same until it resolves, new when it fires again."""
        start = "".join(c for c in self.starts_at if c.isdigit())[:14]
        return f"{self.name}-{self.fingerprint}-{start}"


@dataclass(frozen=True)
class AlertDecision:
    outcome: Outcome
    reason: str


def parse_notification(body: Any) -> list[Alert]:
    """The alerts of one Alertmanager notification; anything else is a BAD_REQUEST naming the field."""
    if not isinstance(body, dict) or str(body.get("version")) != "4":
        raise MonitorError("BAD_REQUEST", 'body: expected Alertmanager\'s webhook JSON with version "4"')
    raw = body.get("alerts")
    if not isinstance(raw, list):
        raise MonitorError("BAD_REQUEST", "field alerts: expected a list")
    alerts = []
    for i, a in enumerate(raw):
        if not isinstance(a, dict) or a.get("status") not in ("firing", "resolved"):
            raise MonitorError("BAD_REQUEST", f"field alerts[{i}].status: expected firing or resolved")
        labels = a.get("labels")
        if not isinstance(labels, dict) or not isinstance(labels.get("alertname"), str):
            raise MonitorError("BAD_REQUEST", f"field alerts[{i}].labels.alertname: required")
        if not isinstance(a.get("fingerprint"), str) or not isinstance(a.get("startsAt"), str):
            raise MonitorError("BAD_REQUEST", f"field alerts[{i}]: fingerprint and startsAt required")
        alerts.append(
            Alert(
                status=a["status"],
                labels={str(k): str(v) for k, v in labels.items()},
                annotations={str(k): str(v) for k, v in (a.get("annotations") or {}).items()},
                starts_at=a["startsAt"],
                fingerprint=a["fingerprint"],
            )
        )
    return alerts


def decide_alert(
    alert: Alert, dataset: str, last: LastTrigger | None, now: datetime, policy: DecisionPolicy
) -> AlertDecision:
    if alert.labels.get("action") != "retrain":
        return AlertDecision("not_retrain", "the alert has no label action=retrain")
    if alert.labels.get("dataset") != dataset:
        got = alert.labels.get("dataset", "(none)")
        return AlertDecision("other_dataset", f"label dataset={got}; this sidecar watches {dataset}")
    if alert.status == "resolved":
        return AlertDecision("resolved", "the alert resolved; a resolved alert starts nothing")
    wait = cooldown_until(last, now, policy)
    if last is not None and wait is not None:
        return AlertDecision(
            "cooldown",
            f"suppressed: last retrain request at {last.at.isoformat()}, cooldown until {wait.isoformat()}",
        )
    return AlertDecision("trigger", f"{alert.name} firing since {alert.starts_at}")


def receive_alerts(config: MonitorConfig, deps: MonitorDeps, body: Any) -> list[dict[str, Any]]:
    """Decides each alert in order (a second alert of the same notification sees the first's
    trigger), sends the triggers, and returns the records it appended to the decision log."""
    alerts = parse_notification(body)
    # The drift check's lock: the cooldown is read and written by one decision at a time.
    if not deps.lock.acquire(timeout=LOCK_SECONDS):
        raise MonitorError("RUN_IN_PROGRESS", "a drift check holds the decision log; Alertmanager retries")
    try:
        return [_apply(config, deps, alert) for alert in alerts]
    finally:
        deps.lock.release()


def _apply(config: MonitorConfig, deps: MonitorDeps, alert: Alert) -> dict[str, Any]:
    now = deps.clock()
    decision = decide_alert(alert, config.dataset, last_trigger(config), now, config.policy)
    dataset = alert.labels.get("dataset", "unknown")
    record: dict[str, Any] = {
        "source": "alert",
        "dataset": dataset,
        "alertname": alert.name,
        "alert_status": alert.status,
        "incident": alert.incident,
        "starts_at": alert.starts_at,
        "labels": dict(alert.labels),
        "action": decision.outcome,
        "reason": decision.reason,
        "decided_at": now.isoformat(),
        "delivered": False,
    }
    outcome: str = decision.outcome
    if decision.outcome == "trigger":
        payload = {
            "event": "alert_firing",
            "dataset": config.dataset,
            "report_id": alert.incident,
            "alertname": alert.name,
            "labels": dict(alert.labels),
            "summary": alert.annotations.get("summary", ""),
            "starts_at": alert.starts_at,
            "reason": decision.reason,
        }
        delivery = deps.send(config.webhook, payload, str(int(now.timestamp())))
        record.update(delivered=delivery.ok, delivery=asdict(delivery))
        outcome = "trigger" if delivery.ok else "failed"
    deps.metrics.alerts.labels(dataset=dataset, outcome=outcome).inc()
    append_decision(config, record)
    log.info(
        "alert %s (%s) for %s: %s (%s)%s",
        alert.name,
        alert.status,
        dataset,
        outcome,
        decision.reason,
        f"; delivery: {record['delivery']['detail']}" if "delivery" in record else "",
    )
    return record


def failed(records: Sequence[dict[str, Any]]) -> bool:
    """A trigger that was not delivered: answered 502 so that Alertmanager sends it again."""
    return any(r["action"] == "trigger" and not r["delivered"] for r in records)
