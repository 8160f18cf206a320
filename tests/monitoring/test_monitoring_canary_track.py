"""The canary check (.github/scripts/canary-check.sh) selects the API's request and latency series by
a `track` label, which only the Prometheus configs can give them. Real Prometheus (Debian's) scrapes
local stand-ins for the API through the committed scrape jobs, and the script's own PromQL, taken
from the script text, must return a value: on the compose config for the stable track, on the
Kubernetes config for both tracks; a canary that never answered a 5xx has a 5xx ratio of 0, and
probe and scrape requests (/health/*, /metrics) count in neither the ratio nor the p99. Every
Prometheus config passes `promtool check config` (where promtool lacks kubernetes_sd, as Debian's
does, the Kubernetes one with its pod discovery swapped for a file of the same targets)."""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

PROM_DIR = ROOT / "monitoring" / "prometheus"
COMPOSE_CONFIG = PROM_DIR / "prometheus.yml"
KUBERNETES_CONFIG = PROM_DIR / "prometheus-kubernetes.yml"
SCRIPT = ROOT / ".github" / "scripts" / "canary-check.sh"
TERRAFORM = ROOT / "terraform"
PROMETHEUS = "/usr/bin/prometheus"

COMPOSE_PROM, COMPOSE_API, QUIET_CANARY = 7661, 7662, 7663
KUBERNETES_PROM, STABLE_POD, CANARY_POD = 7664, 7665, 7666

# What the API's pod template in terraform/modules/k8s-app/main.tf carries (checked below).
POD_LABELS = {"app.kubernetes.io/name": "driftwood-api"}
POD_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": "8080",
    "prometheus.io/path": "/metrics",
}
NAMESPACE = "driftwood-production"
STABLE_POD_NAME, CANARY_POD_NAME = "driftwood-api-stable-7d9c-abcde", "driftwood-api-canary-5f6b-fghij"

# One scrape of a stand-in adds this many predictions, all answered in 25-50 ms, one of them a 503.
REQUESTS_PER_SCRAPE = 200
ERROR_RATIO = 1 / REQUESTS_PER_SCRAPE
# And probe traffic the canary check must leave out, which would move both values if counted: fast
# readiness probes, some answered 503 (the model is loading), and scrapes of /metrics in 50-250 ms.
READY_PROBES_PER_SCRAPE, READY_503_PER_SCRAPE, METRICS_SCRAPES_PER_SCRAPE = 20, 5, 10


def wait_for(what: str, check: Callable[[], Any], seconds: float, done: Callable[[Any], bool] = bool) -> Any:
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as err:
            last = err
        else:
            if done(last):
                return last
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what} after {seconds}s; last seen: {last!r}")


BUCKETS = ("0.025", "0.05", "0.25", "+Inf")


def route_series(route: str, answers: dict[str, int], seconds: float) -> tuple[list[str], list[str]]:
    """One route's request counters and latency histogram, every answer taking ``seconds``. A status
    code never answered has no series (the API has no 5xx series before its first 5xx)."""
    counters = [
        f'driftwood_http_requests_total{{{route},status_code="{code}"}} {n}'
        for code, n in answers.items()
        if n
    ]
    count = sum(answers.values())
    histogram = [
        f'driftwood_http_request_duration_seconds_bucket{{{route},le="{le}"}} '
        f"{count if le == '+Inf' or seconds <= float(le) else 0}"
        for le in BUCKETS
    ]
    histogram.append(f"driftwood_http_request_duration_seconds_sum{{{route}}} {seconds * count}")
    histogram.append(f"driftwood_http_request_duration_seconds_count{{{route}}} {count}")
    return counters, histogram


def metrics_text(scrapes: int, errors: bool) -> str:
    """The API's exposition (serving/src/plugins/metrics.ts) after ``scrapes`` scrapes of traffic."""
    total, failed = REQUESTS_PER_SCRAPE * scrapes, scrapes if errors else 0
    ready = READY_PROBES_PER_SCRAPE * scrapes
    ready_failed = READY_503_PER_SCRAPE * scrapes if errors else 0
    routes = [
        route_series('method="POST",route="/v1/predict"', {"200": total - failed, "503": failed}, 0.04),
        route_series(
            'method="GET",route="/health/ready"', {"200": ready - ready_failed, "503": ready_failed}, 0.002
        ),
        route_series('method="GET",route="/metrics"', {"200": METRICS_SCRAPES_PER_SCRAPE * scrapes}, 0.1),
    ]
    lines = ["# TYPE driftwood_http_requests_total counter"]
    lines += [line for counters, _ in routes for line in counters]
    lines.append("# TYPE driftwood_http_request_duration_seconds histogram")
    lines += [line for _, histogram in routes for line in histogram]
    return "\n".join(lines) + "\n"


class ApiStandIn:
    """A local /metrics whose counters grow with every scrape; with ``errors`` false it has never
    answered a 5xx, so it exposes no 5xx series at all (as the API does)."""

    def __init__(self, port: int, errors: bool = True) -> None:
        self.scrapes = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                with lock:
                    outer.scrapes += 1
                    body = metrics_text(outer.scrapes, errors).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def prometheus(tmp: Path, config: dict[str, Any], port: int) -> Iterator[str]:
    assert shutil.which(PROMETHEUS), f"{PROMETHEUS} is missing: run `make install` (scripts/system-deps.sh)"
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    log_path = tmp / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={path}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert proc.poll() is None, f"Prometheus exited: {log_path.read_text()}"
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as res:
                return res.status == 200

        try:
            wait_for("Prometheus", ready, 60)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as res:
        return json.loads(res.read())


def query(prom: str, promql: str) -> list[dict[str, Any]]:
    body = get_json(f"{prom}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    assert body["status"] == "success", body
    return body["data"]["result"]


def script_value(prom: str, promql: str) -> float:
    """What canary-check.sh's query() prints: the first result's value, or nan without one."""
    result = query(prom, promql)
    return float(result[0]["value"][1]) if result else math.nan


def canary_queries(track: str = "canary") -> dict[str, str]:
    """The PromQL of the script's `name=$(query "...")` lines, over a 1 m window, for ``track``, with
    the script's `name="..."` strings filled in."""
    script = SCRIPT.read_text()
    strings = dict(re.findall(r'^(\w+)="(.+)"$', script, re.MULTILINE))
    found = dict(re.findall(r'^(\w+)=\$\(query "(.+)"\)$', script, re.MULTILINE))
    assert set(found) == {"errors", "p99"}, found
    queries = {}
    for name, text in found.items():
        for var, value in strings.items():
            text = text.replace(f"${{{var}}}", value)
        promql = text.replace('\\"', '"').replace("${window}", "1m")
        assert 'track="canary"' in promql and "$" not in promql, promql
        queries[name] = promql.replace('track="canary"', f'track="{track}"')
    return queries


def measured(prom: str, queries: dict[str, str]) -> dict[str, float]:
    """Waits until every query gives a number the script would accept (not nan)."""

    def values() -> dict[str, float]:
        return {name: script_value(prom, promql) for name, promql in queries.items()}

    return wait_for(
        f"values for {sorted(queries)}", values, 60, lambda got: not any(map(math.isnan, got.values()))
    )


def assert_stand_in_values(values: dict[str, float]) -> None:
    assert values["errors"] == pytest.approx(ERROR_RATIO, rel=1e-6)
    assert 0.025 < values["p99"] <= 0.05


def sanitized(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def pod_target(pod: str, track: str, port: int, app: str = "driftwood-api", phase: str = "Running") -> Any:
    """The target kubernetes_sd (role pod) finds for one of the API's pods, as a file_sd group. The
    pod's address is this host; prometheus.io/port sends the scrape to the pod's stand-in."""
    labels = {
        "__meta_kubernetes_namespace": NAMESPACE,
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_pod_phase": phase,
        "__meta_kubernetes_pod_ip": "127.0.0.1",
        "__meta_kubernetes_pod_container_name": "api",
        "__meta_kubernetes_pod_container_port_name": "http",
        "__meta_kubernetes_pod_container_port_number": "8080",
    }
    pod_labels = {**POD_LABELS, "app.kubernetes.io/name": app, "driftwood.io/track": track}
    labels.update({f"__meta_kubernetes_pod_label_{sanitized(k)}": v for k, v in pod_labels.items()})
    annotations = {**POD_ANNOTATIONS, "prometheus.io/port": str(port)}
    labels.update({f"__meta_kubernetes_pod_annotation_{sanitized(k)}": v for k, v in annotations.items()})
    return {"targets": ["127.0.0.1:8080"], "labels": labels}


def kubernetes_with_file_discovery(tmp: Path) -> dict[str, Any]:
    """The committed Kubernetes config with its pod discovery swapped for a file of the targets
    kubernetes_sd would find: the API's stable and canary pods, a pending API pod and an MLflow pod.
    Debian's Prometheus is built without kubernetes_sd; the relabelling stays as committed."""
    cfg = yaml.safe_load(KUBERNETES_CONFIG.read_text())
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "driftwood-api")
    del job["kubernetes_sd_configs"]
    pods = [
        pod_target(STABLE_POD_NAME, "stable", STABLE_POD),
        pod_target(CANARY_POD_NAME, "canary", CANARY_POD),
        pod_target("driftwood-api-canary-5f6b-pendg", "canary", CANARY_POD, phase="Pending"),
        pod_target("driftwood-mlflow-6c8d-klmno", "", 5000, app="driftwood-mlflow"),
    ]
    (tmp / "pods.json").write_text(json.dumps(pods))
    job["file_sd_configs"] = [{"files": [str(tmp / "pods.json")], "refresh_interval": "1s"}]
    cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
    return cfg


@pytest.fixture(scope="module")
def compose_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The compose config's API job, labels as committed, pointed at a stand-in; and a test-only job
    labelled as a canary that has never answered a 5xx."""
    cfg = yaml.safe_load(COMPOSE_CONFIG.read_text())
    api = next(j for j in cfg["scrape_configs"] if j["job_name"] == "driftwood-api")
    api["static_configs"][0]["targets"] = [f"127.0.0.1:{COMPOSE_API}"]
    quiet = copy.deepcopy(api)
    quiet["job_name"] = "quiet-canary"
    quiet["static_configs"] = [{"targets": [f"127.0.0.1:{QUIET_CANARY}"], "labels": {"track": "canary"}}]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [api, quiet],
    }
    stand_ins = [ApiStandIn(COMPOSE_API), ApiStandIn(QUIET_CANARY, errors=False)]
    try:
        with prometheus(tmp_path_factory.mktemp("compose"), config, COMPOSE_PROM) as url:
            yield url
    finally:
        for s in stand_ins:
            s.close()


@pytest.fixture(scope="module")
def kubernetes_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("kubernetes")
    stand_ins = [ApiStandIn(STABLE_POD), ApiStandIn(CANARY_POD)]
    try:
        with prometheus(tmp, kubernetes_with_file_discovery(tmp), KUBERNETES_PROM) as url:
            yield url
    finally:
        for s in stand_ins:
            s.close()


def test_compose_api_series_carry_the_stable_track(compose_prometheus: str) -> None:
    values = measured(compose_prometheus, canary_queries("stable"))
    assert_stand_in_values(values)
    jobs = {r["metric"]["job"] for r in query(compose_prometheus, 'up{track="stable"}')}
    assert jobs == {"driftwood-api"}


def test_kubernetes_job_keeps_the_api_pods_with_their_track(kubernetes_prometheus: str) -> None:
    def active() -> list[dict[str, Any]]:
        return get_json(f"{kubernetes_prometheus}/api/v1/targets?state=active")["data"]["activeTargets"]

    targets = wait_for(
        "both API pods scraped",
        active,
        60,
        lambda got: len(got) == 2 and all(t["health"] == "up" for t in got),
    )
    got = {
        t["labels"]["pod"]: (
            t["labels"]["job"],
            t["labels"]["track"],
            t["labels"]["namespace"],
            t["scrapeUrl"],
        )
        for t in targets
    }
    assert got == {
        STABLE_POD_NAME: ("driftwood-api", "stable", NAMESPACE, f"http://127.0.0.1:{STABLE_POD}/metrics"),
        CANARY_POD_NAME: ("driftwood-api", "canary", NAMESPACE, f"http://127.0.0.1:{CANARY_POD}/metrics"),
    }
    # The script's queries as committed (track="canary"), and the same for the stable track.
    assert_stand_in_values(measured(kubernetes_prometheus, canary_queries()))
    assert_stand_in_values(measured(kubernetes_prometheus, canary_queries("stable")))


def test_error_ratio_of_a_canary_without_5xx_is_zero(compose_prometheus: str) -> None:
    # The quiet canary has traffic but no 5xx series: the ratio is 0, not empty (which the script
    # reads as no traffic and rolls a healthy canary back).
    values = measured(compose_prometheus, canary_queries())
    assert values["errors"] == 0
    assert 0.025 < values["p99"] <= 0.05
    assert not query(compose_prometheus, 'driftwood_http_requests_total{track="canary",status_code=~"5.."}')


def test_probe_and_scrape_requests_are_left_out(compose_prometheus: str) -> None:
    queries = canary_queries("stable")
    assert_stand_in_values(measured(compose_prometheus, queries))
    # The same queries without the route filter see the probes: more 5xx, and the slow /metrics.
    probe_filter = ',route!~"/metrics|/health/.*"'
    assert all(probe_filter in promql for promql in queries.values()), queries
    counted = measured(compose_prometheus, {k: v.replace(probe_filter, "") for k, v in queries.items()})
    assert counted["errors"] > 2 * ERROR_RATIO
    assert counted["p99"] > 0.05


def test_terraform_api_pods_carry_what_the_kubernetes_job_keeps() -> None:
    main = (TERRAFORM / "modules" / "k8s-app" / "main.tf").read_text()
    start = main.index('resource "kubernetes_deployment_v1" "api"')
    deployment = main[start : main.find("\nresource ", start + 1)]
    # POD_LABELS come from local.api_labels, the rest from the Deployment's pod template.
    for key, value in POD_LABELS.items():
        assert re.search(rf'"{re.escape(key)}"\s*=\s*"{re.escape(value)}"', main), (key, value)
    for key, value in POD_ANNOTATIONS.items():
        assert re.search(rf'"{re.escape(key)}"\s*=\s*"{re.escape(value)}"', deployment), (key, value)
    assert re.search(r'"driftwood\.io/track"\s*=\s*each\.key', deployment)
    assert re.search(r"\btracks\s*=\s*\{\s*stable\s*=[^\n]*\n\s*canary\s*=", main)
    # The namespaces the job watches are the environments' (namespace "driftwood-<environment>").
    assert '"driftwood-${var.environment}"' in main
    environments = sorted(p.name for p in (TERRAFORM / "environments").iterdir() if p.is_dir())
    job = yaml.safe_load(KUBERNETES_CONFIG.read_text())["scrape_configs"][0]
    (sd,) = job["kubernetes_sd_configs"]
    assert sd["role"] == "pod"
    assert sorted(sd["namespaces"]["names"]) == [f"driftwood-{env}" for env in environments]


def promtool(config: Path) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    assert path, "promtool is missing: run `make install` (scripts/system-deps.sh)"
    return subprocess.run([path, "check", "config", str(config)], capture_output=True, text=True, check=False)


CONFIGS = sorted(PROM_DIR.glob("prometheus*.yml"))


def test_both_prometheus_configs_are_checked() -> None:
    assert {p.name for p in CONFIGS} >= {COMPOSE_CONFIG.name, KUBERNETES_CONFIG.name}


# Debian's promtool is built without kubernetes_sd: the Kubernetes config is checked with its pod
# discovery swapped for file discovery (the next test), every other config as it is.
@pytest.mark.parametrize("config", [c for c in CONFIGS if c != KUBERNETES_CONFIG], ids=lambda p: p.name)
def test_promtool_check_config(config: Path) -> None:
    res = promtool(config)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr


def test_promtool_check_kubernetes_config_with_file_discovery(tmp_path: Path) -> None:
    config = tmp_path / "prometheus-kubernetes.yml"
    config.write_text(yaml.safe_dump(kubernetes_with_file_discovery(tmp_path)))
    res = promtool(config)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr
