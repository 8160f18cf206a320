"""Alert → retrain with the real parts: Prometheus (Debian's package) evaluates the repository's rules
on a small exporter whose ``driftwood_drift_detected`` the test sets, Alertmanager (Debian's package)
routes with the repository's alertmanager.yml to the drift sidecar's ``POST /alerts`` (a sidecar
process, .venvs/evidently), and the sidecar starts ``churn_retrain`` on the real Airflow API server
the session shares (conftest.py ``monitor_airflow``). Intervals are seconds instead of minutes;
rules, routes and the sidecar's cooldown are as committed.

In order: a silenced alert starts nothing; lifting the silence starts exactly one run, and its
repeats start none; the resolution starts none; firing again within the cooldown starts none."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from orchestration_support import ROOT, AirflowClient, wait_for
from prometheus_client.parser import text_string_to_metric_families

PROM, AM, SIDECAR, EXPORTER = 7670, 7671, 7672, 7673
MON = ROOT / "monitoring"
SIDECAR_URL = f"http://127.0.0.1:{SIDECAR}"
AM_URL = f"http://127.0.0.1:{AM}"


class Exporter:
    """What the drift sidecar's /metrics says about declared drift, set by the test."""

    def __init__(self) -> None:
        self.detected = {"churn": 0, "other": 0}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                lines = [f'driftwood_drift_detected{{dataset="{d}"}} {v}' for d, v in outer.detected.items()]
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", EXPORTER), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data, {"Content-Type": "application/json", **(headers or {})}, method=method
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            raw = res.read()
            status = res.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def prometheus_config(tmp: Path) -> Path:
    rules = yaml.safe_load((MON / "prometheus" / "rules" / "driftwood.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "2s"
    (tmp / "rules.yml").write_text(yaml.safe_dump(rules))
    cfg = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{AM}"]}]}]},
        "scrape_configs": [
            {"job_name": "driftwood-drift", "static_configs": [{"targets": [f"127.0.0.1:{EXPORTER}"]}]}
        ],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def alertmanager_config(tmp: Path, token_file: Path) -> Path:
    """The committed routing; Slack receivers emptied, the sidecar's URL and token local, and
    seconds for waits (the retrain route repeats every 2 s, so repeats reach the cooldown)."""
    cfg = yaml.safe_load((MON / "alertmanager" / "alertmanager.yml").read_text())
    cfg["route"].update(group_wait="1s", group_interval="1s")
    retrain = next(r for r in cfg["route"]["routes"] if r.get("receiver") == "drift-sidecar-retrain")
    retrain["repeat_interval"] = "2s"
    cfg.pop("templates", None)
    for receiver in cfg["receivers"]:
        receiver.pop("slack_configs", None)
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{SIDECAR_URL}/alerts"
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def sidecar_config(tmp: Path, airflow: dict[str, Any], token_file: Path) -> Path:
    cfg = {
        "dataset": "churn",
        "predictions_dir": str(tmp / "predictions"),
        "lake_dir": str(tmp / "lake"),
        "reference": str(tmp / "reference.csv"),  # read by drift checks only; none runs here
        "columns": {"numerical": ["tenure_days"], "categorical": ["plan"]},
        "schedule_seconds": 0,
        "decision": {"k": 2, "n": 3, "min_rows": 500, "cooldown_minutes": 360},
        "webhook": {
            "kind": "airflow",
            "url": airflow["base"],
            "username": "drift-monitor",
            "password_file": str(airflow["secrets"] / "monitor-password"),
        },
        "alerts": {"token_file": str(token_file)},
    }
    path = tmp / "monitor.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def stack(
    monitor_airflow: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    for binary in ("/usr/bin/prometheus", "/usr/bin/prometheus-alertmanager"):
        assert shutil.which(binary), f"{binary} is missing: run `make install` (scripts/system-deps.sh)"
    python = ROOT / ".venvs" / "evidently" / "bin" / "python"
    assert python.is_file(), f"{python} is missing: run `make install`"
    tmp = tmp_path_factory.mktemp("alert-retrain")
    token = secrets.token_urlsafe(24)
    token_file = tmp / "alerts-token"
    token_file.write_text(token + "\n")
    exporter = Exporter()
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, cmd: list[str]) -> None:
        log = (tmp / f"{name}.log").open("wb")
        env = {**os.environ, "DRIFTWOOD_HTTP_RETRIES": "1"}
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env))

    start(
        "sidecar",
        [
            str(python),
            "-m",
            "monitoring.evidently",
            f"--config={sidecar_config(tmp, monitor_airflow, token_file)}",
            "--host=127.0.0.1",
            f"--port={SIDECAR}",
        ],
    )
    start(
        "alertmanager",
        [
            "/usr/bin/prometheus-alertmanager",
            f"--config.file={alertmanager_config(tmp, token_file)}",
            f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{AM}",
            "--cluster.listen-address=",
        ],
    )
    start(
        "prometheus",
        [
            "/usr/bin/prometheus",
            f"--config.file={prometheus_config(tmp)}",
            f"--storage.tsdb.path={tmp / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{PROM}",
            "--rules.alert.resend-delay=1s",
        ],
    )

    def logs() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in tmp.glob("*.log"))

    try:
        try:
            wait_for("the sidecar", lambda: http("GET", f"{SIDECAR_URL}/health")[0] == 200, 90)
            wait_for("Alertmanager", lambda: http("GET", f"{AM_URL}/api/v2/status")[0] == 200, 60)
            wait_for("Prometheus", lambda: http("GET", f"http://127.0.0.1:{PROM}/-/ready")[0] == 200, 60)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{logs()}") from err
        yield {"exporter": exporter, "token": token, "client": monitor_airflow["client"], "logs": logs}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        exporter.close()


def decisions_counted() -> dict[tuple[str, str], float]:
    """driftwood_alert_retrain_decisions_total by (dataset, outcome), from the sidecar's /metrics."""
    with urllib.request.urlopen(f"{SIDECAR_URL}/metrics", timeout=5) as res:
        text = res.read().decode()
    return {
        (s.labels["dataset"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "driftwood_alert_retrain_decisions"
        for s in family.samples
        if s.name.endswith("_total")
    }


def alert_runs(client: AirflowClient) -> list[dict[str, Any]]:
    status, body = client.request("GET", "/api/v2/dags/churn_retrain/dagRuns?limit=100")
    assert status == 200, body
    return [r for r in body["dag_runs"] if r["dag_run_id"].startswith("alert__")]


def alert_records() -> list[dict[str, Any]]:
    status, body = http("GET", f"{SIDECAR_URL}/decisions?limit=1000")
    assert status == 200, body
    return [r for r in body if r.get("source") == "alert" and r.get("dataset") == "churn"]


def test_alerts_need_the_token(stack: dict[str, Any]) -> None:
    note = {"version": "4", "alerts": []}
    assert http("POST", f"{SIDECAR_URL}/alerts", note)[0] == 401
    assert (
        http("POST", f"{SIDECAR_URL}/alerts", note, {"Authorization": "Bearer wrong-token-123456"})[0] == 401
    )
    ok = http("POST", f"{SIDECAR_URL}/alerts", note, {"Authorization": f"Bearer {stack['token']}"})
    assert ok == (200, {"decisions": []})


def test_a_silenced_alert_starts_no_run(stack: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    status, body = http(
        "POST",
        f"{AM_URL}/api/v2/silences",
        {
            "matchers": [
                {"name": "alertname", "value": "DriftwoodDriftDetected", "isRegex": False, "isEqual": True},
                {"name": "dataset", "value": "churn", "isRegex": False, "isEqual": True},
            ],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "test_alert_retrain",
            "comment": "maintenance",
        },
    )
    assert status == 200, body
    stack["silence"] = body["silenceID"]
    # churn is silenced; "other" (a dataset this sidecar does not watch) is the witness that
    # Alertmanager keeps notifying the sidecar meanwhile.
    stack["exporter"].detected.update(churn=1, other=1)

    def suppressed() -> bool:
        alerts = http("GET", f"{AM_URL}/api/v2/alerts?filter=dataset%3D%22churn%22")[1]
        return bool(alerts) and all(a["status"]["silencedBy"] == [stack["silence"]] for a in alerts)

    wait_for("the churn alert silenced in Alertmanager", suppressed, 60, 0.5)
    seen = decisions_counted().get(("other", "other_dataset"), 0)
    wait_for(
        "two more notifications of the unsilenced alert",
        lambda: decisions_counted().get(("other", "other_dataset"), 0) >= seen + 2,
        60,
        0.5,
    )
    assert not [k for k in decisions_counted() if k[0] == "churn"], decisions_counted()
    assert alert_runs(stack["client"]) == []


def test_lifting_the_silence_starts_exactly_one_run_and_repeats_start_none(stack: dict[str, Any]) -> None:
    status, _ = http("DELETE", f"{AM_URL}/api/v2/silence/{stack['silence']}")
    assert status == 200
    wait_for("the retrain trigger", lambda: decisions_counted().get(("churn", "trigger"), 0) >= 1, 60, 0.5)
    # Alertmanager repeats the firing alert every 2 s: each repeat lands in the cooldown.
    wait_for("two repeats decided", lambda: decisions_counted().get(("churn", "cooldown"), 0) >= 2, 60, 0.5)
    runs = alert_runs(stack["client"])
    assert len(runs) == 1, runs
    assert runs[0]["conf"]["alertname"] == "DriftwoodDriftDetected"
    assert runs[0]["conf"]["dataset"] == "churn"
    triggers = [r for r in alert_records() if r["action"] == "trigger"]
    assert len(triggers) == 1 and triggers[0]["delivered"], triggers
    assert runs[0]["dag_run_id"] == "alert__" + triggers[0]["incident"]
    assert decisions_counted()[("churn", "trigger")] == 1
    stack["incident"] = triggers[0]["incident"]


def test_a_resolved_alert_and_a_second_firing_in_the_cooldown_start_none(stack: dict[str, Any]) -> None:
    stack["exporter"].detected["churn"] = 0
    wait_for("the resolution", lambda: decisions_counted().get(("churn", "resolved"), 0) >= 1, 60, 0.5)
    assert len(alert_runs(stack["client"])) == 1

    stack["exporter"].detected["churn"] = 1

    def second_incident() -> list[dict[str, Any]]:
        return [
            r for r in alert_records() if r["alert_status"] == "firing" and r["incident"] != stack["incident"]
        ]

    again = wait_for("the second firing", second_incident, 60, 0.5)
    assert {r["action"] for r in again} == {"cooldown"}, again
    assert "cooldown until" in again[0]["reason"]
    assert len(alert_runs(stack["client"])) == 1
    assert decisions_counted()[("churn", "trigger")] == 1
