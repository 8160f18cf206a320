"""Grafana cannot run here, so its provisioning is validated as files: YAML/JSON structure, datasource
uids, and — the part that breaks silently — every query of every panel and alert rule only uses
metric names the project really exports. The exported names are read at test time from their
sources: the API's prom-client definitions (serving/src), the drift sidecar's registry, the
statsd_exporter mapping for Airflow, and the recording rules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from monitoring.evidently.metrics import MonitorMetrics

GRAFANA = ROOT / "monitoring" / "grafana"
PROM = ROOT / "monitoring" / "prometheus"
DS_UID = "driftwood-prometheus"
LOKI_UID = "driftwood-loki"
# The stream labels the Loki target sets (tasks/src/log-loki.ts: service, dataset; pino-loki: level,
# hostname) and the JSON fields of our lines that the dashboards filter by.
LOKI_LABELS = {"service", "dataset", "level", "hostname"}
LOKI_FIELDS = {"reqId", "dagRunId", "version", "msg", "level", "dataset", "err"}
PROMQL_WORDS = {
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "rate",
    "irate",
    "increase",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "histogram_quantile",
    "clamp_min",
    "time",
    "label_values",
    "abs",
    "topk",
    "bottomk",
    "avg_over_time",
    "max_over_time",
    "inf",
    "nan",
    "e",
}
BUILTIN = {"up", "ALERTS", "ALERTS_FOR_STATE"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (label matchers, strings, ranges, grouping removed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+\w+", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word in PROMQL_WORDS or word.startswith("__"):
            continue
        names.add(word)
    return names


def exported_names(tmp_path: Path) -> set[str]:
    names = set(BUILTIN)
    # The API: prom-client `name: 'driftwood_…'`; histograms add _bucket/_sum/_count.
    for src in (ROOT / "serving" / "src").rglob("*.ts"):
        for m in re.finditer(r"name:\s*'(driftwood_[a-z0-9_]+)'", src.read_text()):
            names.update({m.group(1), *(m.group(1) + s for s in ("_bucket", "_sum", "_count"))})
    # The drift sidecar, including the ingest collector (which only exports when a result exists).
    (tmp_path / "ingest.json").write_text(
        json.dumps({"dataset": "churn", "rowsRead": 1, "rowsLoaded": 1, "rowsRejected": 0, "quarantined": 0})
    )
    for fam in MonitorMetrics(tmp_path).registry.collect():
        names.update(s.name for s in fam.samples)
        names.add(fam.name + "_total" if fam.type == "counter" else fam.name)
    # Airflow through statsd_exporter.
    mapping = yaml.safe_load((PROM / "statsd-mapping.yml").read_text())
    for m in mapping["mappings"]:
        names.update({m["name"], *(m["name"] + s for s in ("_bucket", "_sum", "_count"))})
    rules = yaml.safe_load((PROM / "rules" / "driftwood.yml").read_text())
    names.update(r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r)
    return names


def test_metric_name_extraction() -> None:
    got = metric_names(
        'sum by (route, le) (rate(a_total{route!~"/metrics|/health/.*"}[5m])) / ignoring(label) group_left '
        "sum(b_bucket offset 1d) > 0.5 and on (instance) up == 1 unless time() - c:rec:rate5m"
    )
    assert got == {"a_total", "b_bucket", "up", "c:rec:rate5m"}


def loki_names(expr: str) -> tuple[set[str], set[str]]:
    """The stream labels a LogQL query selects by, and the fields its label filters after `| json` use."""
    selectors = re.findall(r"\{([^}]*)\}", expr)
    assert selectors, f"no stream selector in {expr!r}"
    labels = {m for s in selectors for m in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", s)}
    after = expr.split("| json", 1)[1] if "| json" in expr else ""
    fields = set(re.findall(r"\|\s*(\w+)\s*(?:=~|!~|!=|=)", after))
    return labels, fields


def test_loki_name_extraction() -> None:
    expr = 'sum(count_over_time({service="api", level=~"e|c"} | json | reqId=~"x" [1m]))'
    labels, fields = loki_names(expr)
    assert (labels, fields) == ({"service", "level"}, {"reqId"})


def check_loki_target(where: str, expr: str) -> None:
    labels, fields = loki_names(expr)
    assert labels and labels <= LOKI_LABELS, f"{where}: labels {sorted(labels - LOKI_LABELS)} are not set"
    assert fields <= LOKI_FIELDS, f"{where}: fields {sorted(fields - LOKI_FIELDS)} are not in our lines"


def dashboards() -> list[Path]:
    return sorted((GRAFANA / "dashboards").glob("*.json"))


def test_the_api_exports_the_metrics_the_dashboards_rely_on(tmp_path: Path) -> None:
    names = exported_names(tmp_path)
    assert {"driftwood_http_requests_total", "driftwood_predictions_total", "driftwood_model_served"} <= names
    assert {
        "driftwood_drift_share",
        "driftwood_drift_feature_score",
        "driftwood_ingest_rows_rejected",
    } <= names


@pytest.mark.parametrize("path", dashboards(), ids=lambda p: p.name)
def test_dashboard_is_valid_and_queries_only_exported_metrics(path: Path, tmp_path: Path) -> None:
    exported = exported_names(tmp_path)
    d = json.loads(path.read_text())
    assert d["uid"].startswith("driftwood-") and d["title"] and "driftwood" in d["tags"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) and ids, "panel ids must be unique"
    for p in d["panels"]:
        where = f"{path.name} panel {p['id']} ({p['title']})"
        assert p["datasource"]["uid"] in (DS_UID, LOKI_UID), where
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, where
        assert p["targets"], where
        for t in p["targets"]:
            assert t["datasource"]["uid"] == p["datasource"]["uid"], where
            if t["datasource"]["uid"] == LOKI_UID:
                check_loki_target(where, t["expr"])
                continue
            used = metric_names(t["expr"])
            assert used, f"{where}: no metric in {t['expr']!r}"
            assert used <= exported, f"{where}: {sorted(used - exported)} not exported by the project"
    for v in d["templating"]["list"]:
        if v["type"] == "textbox":
            continue
        if v["datasource"]["uid"] == LOKI_UID:
            # label_values(<stream selector>, <label>)
            m = re.fullmatch(r"label_values\((\{[^}]*\}),\s*(\w+)\)", v["query"]["query"])
            assert m and m.group(2) in LOKI_LABELS, v["name"]
            check_loki_target(v["name"], m.group(1))
            continue
        # label_values(<metric>, <label>): the first argument is the metric.
        m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", v["query"]["query"])
        assert m and m.group(1) in exported, v["name"]


def test_other_dashboards_use_the_provisioned_datasource() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = ds["datasources"]
    assert (source["uid"], source["type"]) == (DS_UID, "prometheus") and source["url"].startswith("http")
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "driftwood.yml").read_text())
    assert provider["providers"][0]["options"]["path"] and provider["providers"][0]["type"] == "file"
    titles = [json.loads(p.read_text())["title"] for p in dashboards()]
    assert len(titles) == 4 and len(set(titles)) == 4


def test_the_logs_dashboard_has_loki_panels_next_to_api_metrics() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "loki.yml").read_text())
    [source] = ds["datasources"]
    assert (source["uid"], source["type"]) == (LOKI_UID, "loki") and source["url"].startswith("http")
    d = json.loads((GRAFANA / "dashboards" / "logs.json").read_text())
    kinds = {(p["type"], p["datasource"]["uid"]) for p in d["panels"]}
    assert ("logs", LOKI_UID) in kinds and ("timeseries", DS_UID) in kinds
    # The API's log panel and a metrics panel share a row.
    rows = {}
    for p in d["panels"]:
        rows.setdefault(p["gridPos"]["y"], set()).add(p["datasource"]["uid"])
    assert any(r == {DS_UID, LOKI_UID} for r in rows.values())


def test_grafana_alert_rules_and_slack_contact_point(tmp_path: Path) -> None:
    exported = exported_names(tmp_path)
    rules = yaml.safe_load((GRAFANA / "provisioning" / "alerting" / "rules.yml").read_text())
    uids = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            uids.append(rule["uid"])
            refs = {q["refId"]: q for q in rule["data"]}
            assert rule["condition"] in refs, rule["uid"]
            for q in rule["data"]:
                if q["datasourceUid"] == "__expr__":
                    assert q["model"]["expression"] in refs, rule["uid"]
                else:
                    assert q["datasourceUid"] == DS_UID
                    used = metric_names(q["model"]["expr"])
                    assert used and used <= exported, (rule["uid"], used - exported)
            assert rule["annotations"]["summary"] and rule["labels"]["severity"]
    assert len(uids) == len(set(uids)) >= 3
    points = yaml.safe_load((GRAFANA / "provisioning" / "alerting" / "contact-points.yml").read_text())
    [receiver] = points["contactPoints"][0]["receivers"]
    assert receiver["type"] == "slack"
    # The webhook URL comes from a secret file, never from the repository.
    assert re.fullmatch(r"\$__file\{/[^}]+\}", receiver["settings"]["url"])
    policies = yaml.safe_load((GRAFANA / "provisioning" / "alerting" / "policies.yml").read_text())
    assert policies["policies"][0]["receiver"] == points["contactPoints"][0]["name"]


def test_prometheus_rules_use_only_exported_metrics(tmp_path: Path) -> None:
    exported = exported_names(tmp_path)
    rules = yaml.safe_load((PROM / "rules" / "driftwood.yml").read_text())
    for g in rules["groups"]:
        for r in g["rules"]:
            used = metric_names(r["expr"])
            assert used <= exported, (r.get("alert") or r.get("record"), sorted(used - exported))
