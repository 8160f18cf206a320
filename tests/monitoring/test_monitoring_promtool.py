"""The committed Prometheus and Alertmanager files pass their own tools: promtool check config,
promtool test rules (tests/driftwood.test.yml holds a firing and a quiet case per alert) and amtool."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT

PROM = ROOT / "monitoring" / "prometheus"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: run `make install` (scripts/system-deps.sh)"
    return path


def run(cmd: list[str]) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout + res.stderr


def test_promtool_check_config() -> None:
    out = run([tool("promtool"), "check", "config", str(PROM / "prometheus.yml")])
    assert "SUCCESS" in out and "rules found" in out


def test_promtool_test_rules() -> None:
    out = run([tool("promtool"), "test", "rules", str(PROM / "tests" / "driftwood.test.yml")])
    assert "SUCCESS" in out


def test_every_alert_has_a_rule_test_and_slack_text() -> None:
    rules = yaml.safe_load((PROM / "rules" / "driftwood.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((PROM / "tests" / "driftwood.test.yml").read_text())
    cases = [t for case in tests["tests"] for t in case.get("alert_rule_test", [])]
    tested = {t["alertname"] for t in cases if t["exp_alerts"]}
    assert set(alerts) == tested
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


@pytest.mark.parametrize("config", ["alertmanager.yml"])
def test_amtool_check_config(config: str) -> None:
    out = run([tool("amtool"), "check-config", str(ROOT / "monitoring" / "alertmanager" / config)])
    assert "SUCCESS" in out and "4 receivers" in out


def test_retrain_alerts_reach_the_sidecar_and_slack() -> None:
    am = str(ROOT / "monitoring" / "alertmanager" / "alertmanager.yml")
    routed = run(
        [
            tool("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={am}",
            "--verify.receivers=drift-sidecar-retrain,slack-ml-platform",
            "alertname=DriftwoodDriftDetected",
            "action=retrain",
            "severity=warning",
            "dataset=churn",
        ]
    )
    assert "drift-sidecar-retrain" in routed
    other = run(
        [
            tool("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={am}",
            "alertname=DriftwoodApiErrorRate",
            "severity=critical",
        ]
    )
    assert "drift-sidecar-retrain" not in other
