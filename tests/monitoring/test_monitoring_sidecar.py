"""The drift sidecar end to end with real Evidently: prediction log → report in the lake → gauges on
/metrics → k-of-n decision → HMAC-signed webhook to a real local receiver that checks the signature."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import CATEGORICAL, NUMERICAL, feature_rows, write_predictions
from prometheus_client.parser import text_string_to_metric_families

from monitoring.evidently.config import parse_config
from monitoring.evidently.metrics import MonitorMetrics
from monitoring.evidently.monitor import MonitorDeps, run_drift_check
from monitoring.evidently.reference import reference_hash
from monitoring.evidently.server import Sidecar

T0 = datetime(2026, 11, 20, 8, tzinfo=UTC)
SECRET = b"test-webhook-secret-0123456789"


def make_config(tmp: Path, webhook_url: str) -> Any:
    (tmp / "secret").write_bytes(SECRET + b"\n")
    feature_rows(3000, seed=1).to_parquet(tmp / "reference.parquet")
    return parse_config(
        {
            "dataset": "churn",
            "predictions_dir": "predictions",
            "lake_dir": "lake",
            "reference": str(tmp / "reference.parquet"),
            "columns": {"numerical": list(NUMERICAL), "categorical": list(CATEGORICAL)},
            "window_minutes": 60,
            "max_rows": 0,
            "decision": {"k": 2, "n": 3, "min_rows": 200, "cooldown_minutes": 360},
            "webhook": {"kind": "signed", "url": webhook_url + "/hook", "secret_file": "secret"},
        },
        tmp,
    )


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def call(url: str, body: dict[str, Any] | None = None) -> tuple[int, bytes, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, res.read(), res.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers.get("Content-Type", "")


def run_window(base: str, clock: Clock, hour: int) -> dict[str, Any]:
    end = T0 + timedelta(hours=hour + 1)
    clock.now = end + timedelta(minutes=1)
    status, body, _ = call(f"{base}/run", {"end": end.isoformat()})
    assert status == 200, body
    return json.loads(body)


def samples(base: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    _, text, ctype = call(f"{base}/metrics")
    assert ctype.startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


@pytest.fixture
def sidecar(tmp_path: Path, receiver_factory: Any) -> Any:
    receiver = receiver_factory(7602, SECRET)
    config = make_config(tmp_path, receiver.url)
    clock = Clock()
    app = Sidecar(config, MonitorDeps(metrics=MonitorMetrics(), clock=clock), "127.0.0.1", 7601)
    app.start()
    yield app, config, clock, receiver, tmp_path
    app.stop()


def test_drift_in_two_of_three_windows_triggers_one_signed_webhook_then_cools_down(sidecar: Any) -> None:
    app, config, clock, receiver, tmp = sidecar
    base = f"http://127.0.0.1:{app.port}"
    status, _, _ = call(f"{base}/reports/latest")
    assert status == 404
    preds = tmp / "predictions"
    write_predictions(preds, feature_rows(800, seed=2), T0, 60)
    for hour in (1, 2, 3, 4):
        write_predictions(preds, feature_rows(800, seed=10 + hour, shift=0.6), T0 + timedelta(hours=hour), 60)
    write_predictions(preds, feature_rows(50, seed=9, shift=0.6), T0 + timedelta(hours=5), 60)

    calm = run_window(base, clock, 0)
    assert (calm["rows"], calm["dataset_drift"], calm["action"]) == (800, False, "no_drift")
    first = run_window(base, clock, 1)
    assert (first["dataset_drift"], first["action"]) == (True, "no_drift")
    assert receiver.received == []
    second = run_window(base, clock, 2)
    assert (second["dataset_drift"], second["action"], second["delivered"]) == (True, "trigger", True)
    assert second["decision"]["reason"].startswith("2 of the last 3 windows drifted")
    # The windows behind a trigger never count again: fresh evidence is needed …
    after = run_window(base, clock, 3)
    assert (after["dataset_drift"], after["action"]) == (True, "no_drift")
    # … and when it comes within the cooldown, the trigger is suppressed (and logged as such).
    third = run_window(base, clock, 4)
    assert (third["dataset_drift"], third["action"], third["delivered"]) == (True, "cooldown", False)
    assert "cooldown until" in third["decision"]["reason"]
    small = run_window(base, clock, 5)
    assert (small["rows"], small["action"]) == (50, "insufficient_rows")

    # Exactly one webhook, signed (the receiver refuses bad signatures), carrying the report id.
    assert receiver.rejected == 0 and len(receiver.received) == 1
    hook = receiver.received[0]
    payload = json.loads(hook["body"])
    assert hook["path"] == "/hook"
    assert payload["report_id"] == second["report_id"] == "churn-20261120T110000Z"
    assert payload["model"] == {"name": "churn", "version": "3"}
    assert hook["headers"]["X-Driftwood-Delivery"] == second["report_id"]

    # Reports as HTML + JSON in the lake, one folder per window; latest served over HTTP.
    for rec in (calm, first, second, after, third):
        folder = tmp / "lake" / "monitoring" / "reports" / "churn" / rec["report_id"]
        assert {p.name for p in folder.iterdir()} == {"report.html", "snapshot.json", "summary.json"}
        snap = json.loads((folder / "snapshot.json").read_text())
        assert any("DriftedColumnsCount" in json.dumps(m) for m in snap["metrics"])
    assert not (tmp / "lake" / "monitoring" / "reports" / "churn" / small["report_id"]).exists()
    status, html, ctype = call(f"{base}/reports/latest")
    assert status == 200 and ctype.startswith("text/html") and b"<html" in html.lower()[:2000]
    _, latest, _ = call(f"{base}/reports/latest.json")
    assert json.loads(latest)["report_id"] == third["report_id"]

    # Every decision kept, with its reason.
    kept = [json.loads(line) for line in config.decisions_file.read_text().splitlines()]
    assert [d["action"] for d in kept] == [
        "no_drift",
        "no_drift",
        "trigger",
        "no_drift",
        "cooldown",
        "insufficient_rows",
    ]
    assert all(d["decision"]["reason"] for d in kept)
    _, recent, _ = call(f"{base}/decisions?limit=2")
    assert [d["action"] for d in json.loads(recent)] == ["cooldown", "insufficient_rows"]

    # Gauges labelled by model and reference hash; drifted features flagged.
    m = samples(base)
    ref = reference_hash(config.reference)
    labels = {"dataset": "churn", "model_name": "churn", "model_version": "3", "reference_hash": ref}
    share = dict((tuple(sorted(lab.items())), v) for lab, v in m["driftwood_drift_share"])
    assert share[tuple(sorted(labels.items()))] >= 0.5
    drifted = {lab["feature"]: v for lab, v in m["driftwood_drift_feature_drifted"]}
    assert set(drifted) == set(NUMERICAL + CATEGORICAL)
    assert drifted["tenure_days"] == 1 and drifted["region"] == 0
    assert {lab["method"] for lab, _ in m["driftwood_drift_feature_score"]} >= {
        "Wasserstein distance (normed)"
    }
    assert next(v for _, v in m["driftwood_drift_prediction_score"]) > 0.1
    rows = {lab["side"]: v for lab, v in m["driftwood_drift_rows_compared"]}
    assert rows == {"current": 800, "reference": 3000}
    assert m["driftwood_drift_detected"] == [({"dataset": "churn"}, 1.0)]
    triggers = {lab["outcome"]: v for lab, v in m["driftwood_drift_retrain_triggers_total"]}
    assert triggers == {"ok": 1.0}


def test_calm_traffic_never_triggers(sidecar: Any) -> None:
    app, _config, clock, receiver, tmp = sidecar
    base = f"http://127.0.0.1:{app.port}"
    for hour in range(4):
        write_predictions(
            tmp / "predictions", feature_rows(800, seed=20 + hour), T0 + timedelta(hours=hour), 60
        )
    records = [run_window(base, clock, hour) for hour in range(4)]
    assert [r["dataset_drift"] for r in records] == [False] * 4
    assert [r["action"] for r in records] == ["no_drift"] * 4
    assert receiver.received == [] and receiver.rejected == 0
    m = samples(base)
    assert m["driftwood_drift_detected"] == [({"dataset": "churn"}, 0.0)]
    assert "driftwood_drift_retrain_triggers_total" not in m


def test_bad_requests_name_the_field(sidecar: Any) -> None:
    app, *_ = sidecar
    base = f"http://127.0.0.1:{app.port}"
    status, body, _ = call(f"{base}/run", {"end": "yesterday"})
    assert status == 400 and b"field end" in body
    status, body, _ = call(f"{base}/run", {"end": "2026-11-20T10:00:00"})
    assert status == 400 and b"timezone" in body
    status, _, _ = call(f"{base}/nope")
    assert status == 404


def test_a_refused_webhook_is_recorded_and_retried_on_the_next_drifted_window(
    tmp_path: Path, receiver_factory: Any
) -> None:
    refusing = receiver_factory(7604, b"not-the-sidecar-secret-at-all")
    config = make_config(tmp_path, refusing.url)
    clock = Clock()
    deps = MonitorDeps(metrics=MonitorMetrics(), clock=clock)
    for hour in range(3):
        write_predictions(
            tmp_path / "predictions",
            feature_rows(400, seed=30 + hour, shift=0.6),
            T0 + timedelta(hours=hour),
            60,
        )
    actions = []
    for hour in range(3):
        end = T0 + timedelta(hours=hour + 1)
        clock.now = end + timedelta(minutes=1)
        rec = run_drift_check(config, deps, end)
        actions.append((rec["action"], rec["delivered"], rec.get("delivery", {}).get("status")))
    # Refused (401) is not a delivery: no cooldown starts, so the next drifted window asks again.
    assert actions == [("no_drift", False, None), ("trigger", False, 401), ("trigger", False, 401)]
    assert refusing.rejected == 2 and refusing.received == []
    kept = [json.loads(line) for line in config.decisions_file.read_text().splitlines()]
    assert [d["delivery"]["status"] for d in kept if d["action"] == "trigger"] == [401, 401]
