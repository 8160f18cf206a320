"""Real Prometheus and Alertmanager (Debian's packages) with the repository's rules and routing: the
real API is started without a model (its MLflow is unreachable), Prometheus scrapes it, the
model-not-loaded alert fires and reaches a local HTTP server standing in for Slack, with the text
from the Slack template; the 5xx alert it causes is inhibited, as alertmanager.yml says."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, Receiver

API, PROM, AM, SLACK = 7620, 7621, 7622, 7623
MON = ROOT / "monitoring"


def wait_for(what: str, check: Callable[[], Any], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got = check()
        except (OSError, ValueError):
            got = None
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what} after {seconds}s")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as res:
        return json.loads(res.read())


def post(url: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.status
    except urllib.error.HTTPError as err:
        return err.code


def prometheus_config(tmp: Path) -> Path:
    """The repository's config and rules, pointed at the local ports, evaluated every second, with
    each rule's ``for`` shortened so the test does not wait minutes. Expressions stay as committed."""
    cfg = yaml.safe_load((MON / "prometheus" / "prometheus.yml").read_text())
    cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
    cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{AM}"]
    api_job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "driftwood-api")
    api_job["static_configs"][0]["targets"] = [f"127.0.0.1:{API}"]
    cfg["scrape_configs"] = [api_job]
    rules = yaml.safe_load((MON / "prometheus" / "rules" / "driftwood.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "2s"
    (tmp / "rules").mkdir()
    (tmp / "rules" / "driftwood.yml").write_text(yaml.safe_dump(rules))
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def alertmanager_config(tmp: Path, slack_url: str) -> Path:
    cfg = yaml.safe_load((MON / "alertmanager" / "alertmanager.yml").read_text())
    (tmp / "slack-webhook-url").write_text(slack_url + "\n")
    cfg["route"].update(group_wait="1s", group_interval="1s")
    cfg["templates"] = [str(MON / "alertmanager" / "templates" / "*.tmpl")]
    for receiver in cfg["receivers"]:
        for slack in receiver.get("slack_configs", []):
            slack["api_url_file"] = str(tmp / "slack-webhook-url")
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    for binary in ("/usr/bin/prometheus", "/usr/bin/prometheus-alertmanager", "node"):
        assert shutil.which(binary), f"{binary} is missing: run `make install` (scripts/system-deps.sh)"
    assert (ROOT / "tasks" / "dist" / "cli.js").is_file(), "tasks/dist/cli.js is missing: run `make build`"
    tmp = tmp_path_factory.mktemp("alerting")
    slack = Receiver(SLACK)
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        log = (tmp / f"{name}.log").open("wb")
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT))

    env = {
        **os.environ,
        "DRIFTWOOD_HOME": str(tmp / "home"),
        "DRIFTWOOD_API_HOST": "127.0.0.1",
        "DRIFTWOOD_API_PORT": str(API),
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:7698",  # nothing listens: no model can load
        "DRIFTWOOD_API_AUTH": "none",  # open on purpose: the API fails closed without credentials
        "LOG_LEVEL": "warn",
    }
    start("api", ["node", "tasks/dist/cli.js", "serve"], env)
    start(
        "alertmanager",
        [
            "/usr/bin/prometheus-alertmanager",
            f"--config.file={alertmanager_config(tmp, slack.url + '/slack')}",
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
        ],
    )
    try:
        wait_for(
            "the API", lambda: urllib.request.urlopen(f"http://127.0.0.1:{API}/health/live", timeout=2), 60
        )
        wait_for("Alertmanager", lambda: get_json(f"http://127.0.0.1:{AM}/api/v2/status"), 60)
        wait_for("Prometheus", lambda: get_json(f"http://127.0.0.1:{PROM}/api/v1/status/config"), 60)
        yield {"slack": slack, "tmp": tmp}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        slack.close()


def slack_texts(slack: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in slack.received]


def test_model_not_loaded_reaches_slack_and_inhibits_the_error_rate_alert(stack: dict[str, Any]) -> None:
    slack: Receiver = stack["slack"]

    def scraped() -> bool:
        q = get_json(f"http://127.0.0.1:{PROM}/api/v1/query?query=up%7Bjob%3D%22driftwood-api%22%7D")
        return [r["value"][1] for r in q["data"]["result"]] == ["1"]

    # Start the traffic only once Prometheus sees the API, so the counters' increase is observed.
    wait_for("the first scrape of the API", scraped, 60)
    # Steady traffic to an API without a model: every prediction is a 5xx.
    statuses: set[int] = set()
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            statuses.add(post(f"http://127.0.0.1:{API}/v1/predict", {"tenure_days": 10, "plan": "basic"}))
            stop.wait(0.2)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    last: dict[str, set[str]] = {"firing": set()}

    def firing() -> set[str]:
        alerts = get_json(f"http://127.0.0.1:{PROM}/api/v1/alerts")["data"]["alerts"]
        names = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
        last["firing"] = names
        return names if {"DriftwoodModelNotLoaded", "DriftwoodApiErrorRate"} <= names else set()

    try:
        names = wait_for("both alerts firing in Prometheus", firing, 120)
    except AssertionError as err:
        raise AssertionError(f"{err}; firing then: {sorted(last['firing'])}") from err
    finally:
        stop.set()
        sender.join(timeout=10)
    assert statuses and all(st >= 500 for st in statuses), statuses
    assert "DriftwoodApiDown" not in names

    def notified() -> list[dict[str, Any]]:
        return [m for m in slack_texts(slack) if "DriftwoodModelNotLoaded" in json.dumps(m)]

    message = wait_for("the Slack notification", notified, 90)[0]
    attachment = message["attachments"][0]
    assert message["channel"] == "#driftwood-oncall"
    assert attachment["title"].startswith("[FIRING:1] DriftwoodModelNotLoaded (critical)")
    assert f"*Driftwood API 127.0.0.1:{API} serves no champion model*" in attachment["text"]
    assert "/health/ready is 503" in attachment["text"]

    def inhibited() -> bool:
        alerts = get_json(f"http://127.0.0.1:{AM}/api/v2/alerts")
        err = [a for a in alerts if a["labels"]["alertname"] == "DriftwoodApiErrorRate"]
        return bool(err) and all(
            a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"] for a in err
        )

    assert wait_for("the error-rate alert to be inhibited", inhibited, 30)
    assert not [m for m in slack_texts(slack) if "DriftwoodApiErrorRate" in json.dumps(m)]
