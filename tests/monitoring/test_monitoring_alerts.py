"""Alertmanager's notifications as retrain requests (alerts.py) on plain data: which alert starts a
run, and that the cooldown is one for both sources, alerts and the sidecar's own drift checks. The
path through real Prometheus, Alertmanager and Airflow: tests/python/test_alert_retrain.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitoring.evidently.alerts import Alert, decide_alert, parse_notification, receive_alerts
from monitoring.evidently.config import parse_config
from monitoring.evidently.decision import DecisionPolicy, LastTrigger, WindowOutcome, decide_retrain
from monitoring.evidently.errors import MonitorError
from monitoring.evidently.monitor import MonitorDeps, last_trigger
from monitoring.evidently.webhook import Delivery

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
POLICY = DecisionPolicy(k=2, n=3, min_rows=100, cooldown_minutes=360)
RETRAIN = {"alertname": "DriftwoodDriftDetected", "action": "retrain", "dataset": "churn"}


def alert(status: str = "firing", **labels: str) -> Alert:
    return Alert(status, {**RETRAIN, **labels}, {}, "2026-11-20T11:58:00Z", "abc123")


def sent(hours_ago: float) -> LastTrigger:
    at = T0 - timedelta(hours=hours_ago)
    return LastTrigger(at, at)


CASES = [
    ("a firing retrain alert starts a run", alert(), None, "trigger"),
    ("the cooldown after any earlier request holds it", alert(), sent(1), "cooldown"),
    ("after the cooldown it starts one again", alert(), sent(7), "trigger"),
    ("resolved starts nothing", alert("resolved"), None, "resolved"),
    ("no action=retrain label: not ours", alert(action="page"), None, "not_retrain"),
    ("another dataset's alert", alert(dataset="btc"), None, "other_dataset"),
]


@pytest.mark.parametrize(("name", "given", "last", "outcome"), CASES, ids=[c[0] for c in CASES])
def test_decide_alert(name: str, given: Alert, last: LastTrigger | None, outcome: str) -> None:
    assert decide_alert(given, "churn", last, T0, POLICY).outcome == outcome


def test_an_incident_is_one_firing_of_one_alert() -> None:
    first = alert()
    again = Alert("firing", first.labels, {}, "2026-11-20T13:05:00Z", "abc123")
    assert first.incident == "DriftwoodDriftDetected-abc123-20261120115800"
    assert again.incident != first.incident


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "3", "alerts": []}, 'version "4"'),
        ({"version": "4"}, "field alerts"),
        ({"version": "4", "alerts": [{"status": "pending"}]}, "alerts[0].status"),
        ({"version": "4", "alerts": [{"status": "firing", "labels": {}}]}, "alerts[0].labels.alertname"),
    ],
)
def test_a_malformed_notification_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(MonitorError) as err:
        parse_notification(body)
    assert err.value.code == "BAD_REQUEST" and field in str(err.value)


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "alerts": list(alerts)}


def am_alert(name: str, fingerprint: str, status: str = "firing") -> dict[str, Any]:
    return {
        "status": status,
        "labels": {**RETRAIN, "alertname": name},
        "annotations": {"summary": f"{name} for churn"},
        "startsAt": "2026-11-20T11:58:00Z",
        "fingerprint": fingerprint,
    }


def sidecar(tmp_path: Path, deliveries: list[bool]) -> tuple[Any, MonitorDeps, list[dict[str, Any]]]:
    config = parse_config(
        {
            "dataset": "churn",
            "predictions_dir": "predictions",
            "lake_dir": "lake",
            "reference": "reference.csv",
            "columns": {"numerical": ["tenure_days"]},
            "decision": {"cooldown_minutes": 360},
        },
        tmp_path,
    )
    payloads: list[dict[str, Any]] = []

    def send(_hook: Any, payload: dict[str, Any], _ts: str) -> Delivery:
        payloads.append(payload)
        ok = deliveries.pop(0)
        return Delivery(ok, 200 if ok else 0, "dag run" if ok else "cannot reach airflow")

    return config, MonitorDeps(send=send, clock=lambda: T0), payloads


def test_two_alerts_of_one_incident_start_one_run_and_the_drift_check_honours_it(tmp_path: Path) -> None:
    config, deps, payloads = sidecar(tmp_path, [True])
    records = receive_alerts(
        config,
        deps,
        notification(am_alert("DriftwoodDriftDetected", "a1"), am_alert("DriftwoodModelQualityDrop", "b2")),
    )
    assert [r["action"] for r in records] == ["trigger", "cooldown"]
    assert len(payloads) == 1 and payloads[0]["event"] == "alert_firing"
    assert payloads[0]["report_id"] == "DriftwoodDriftDetected-a1-20261120115800"
    # The sidecar's own check an hour later, with drift in k of n windows, is in the same cooldown.
    last = last_trigger(config)
    assert last == LastTrigger(T0, T0)
    windows = [WindowOutcome(T0 + timedelta(hours=h), 1000, True, f"w{h}") for h in (1, 2)]
    decision = decide_retrain(windows[1], windows[:1], last, T0 + timedelta(hours=2), POLICY)
    assert decision.action == "cooldown"


def test_a_failed_delivery_starts_no_cooldown(tmp_path: Path) -> None:
    config, deps, payloads = sidecar(tmp_path, [False, True])
    first = receive_alerts(config, deps, notification(am_alert("DriftwoodDriftDetected", "a1")))
    assert first[0]["action"] == "trigger" and not first[0]["delivered"]
    assert last_trigger(config) is None
    again = receive_alerts(config, deps, notification(am_alert("DriftwoodDriftDetected", "a1")))
    assert again[0]["delivered"] and len(payloads) == 2
    counted = {
        (s.labels["outcome"]): s.value
        for m in deps.metrics.registry.collect()
        if m.name == "driftwood_alert_retrain_decisions"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert counted == {"failed": 1.0, "trigger": 1.0}
