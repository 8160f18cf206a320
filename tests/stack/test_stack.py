"""The whole loop in containers, on the engine at DOCKER_HOST (podman here): the five images build
and rebuild from their layers, the compose stack comes up, churn_pipeline runs every step in its own
container through Airflow's REST API and the API container serves the version it registered, drifted
traffic makes the sidecar start exactly one churn_retrain run, everything survives stack-down/up,
and a step that fails marks its task failed with the step's error in the task log.

One stack for the module (project ``dwtest``, its own secrets, ports and volumes); the tests run in
file order and each builds on the one before. Nothing here is a stand-in for Driftwood's parts: the
only stand-ins are the offline base images and third-party services of docker-compose.offline.yml.
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("DRIFTWOOD_HOME", ROOT / ".driftwood"))
WORK = HOME / "test" / "stack"
PROJECT = "dwtest"
# The names docker/build-images.sh gives and docker-compose.yml runs (same settings).
REGISTRY = os.environ.get("DRIFTWOOD_REGISTRY", "ghcr.io/driftwood-mlops")
TAG = os.environ.get("DRIFTWOOD_TAG", "dev")
COMPONENTS = ("tasks", "serving", "mlflow", "evidently", "airflow")
IMAGES = [f"{REGISTRY}/driftwood-{c}:{TAG}" for c in COMPONENTS]
TASKS_IMAGE = IMAGES[0]
PIPELINE_TASKS = ("ingest", "snapshot", "features", "train", "evaluate", "promote")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    env: dict[str, str]
    ports: dict[str, int]
    secrets: Path
    timings: dict[str, float] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    def sh(self, *args: str, timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(args, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {r.returncode}:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
            )
        return r

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        files = ["-f", "docker-compose.yml"]
        if (HOME / "stack" / "offline").exists():
            files += ["-f", "docker-compose.offline.yml"]
        return self.sh("docker-compose", *files, "-p", PROJECT, *args, timeout=timeout)

    def secret(self, name: str) -> str:
        return (self.secrets / name).read_text().strip()

    # -- HTTP ------------------------------------------------------------------------------------
    def http(
        self, method: str, port: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports[port]}{path}", data=data, method=method)
        req.add_header("content-type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                raw = res.read()
                status = res.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def airflow(self, method: str, path: str, body: Any = None) -> Any:
        """One call to Airflow's REST API as admin; the token is kept and renewed when refused."""
        for fresh in (False, True):
            if fresh or "airflow_token" not in self.state:
                users = json.loads((self.secrets / "airflow_users.json").read_text())
                status, token = self.http(
                    "POST", "airflow", "/auth/token", {"username": "admin", "password": users["admin"]}
                )
                assert status in (200, 201), token
                self.state["airflow_token"] = token["access_token"]
            auth = {"authorization": f"Bearer {self.state['airflow_token']}"}
            status, out = self.http(method, "airflow", path, body, auth)
            if status != 401:
                break
        assert status < 300, f"{method} {path}: {status} {out}"
        return out

    def api(self, method: str, path: str, body: Any = None, user: str = "admin") -> tuple[int, Any]:
        password = self.secret("api_admin_password" if user == "admin" else "api_predict_password")
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        return self.http(method, "api", path, body, {"authorization": f"Basic {auth}"})

    def champion(self) -> str | None:
        status, out = self.http(
            "GET", "mlflow", "/api/2.0/mlflow/registered-models/alias?name=churn&alias=champion"
        )
        return str(out["model_version"]["version"]) if status == 200 else None

    def trigger(self, dag_id: str, logical_date: str | None) -> str:
        run_id = f"test-{dag_id}-{int(time.time())}"
        self.airflow(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            {"dag_run_id": run_id, "logical_date": logical_date, "conf": {}},
        )
        return run_id

    def wait_run(self, dag_id: str, run_id: str, limit: float = 1500) -> str:
        deadline = time.time() + limit
        state = "queued"
        while time.time() < deadline:
            state = self.airflow("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return str(state)
            time.sleep(5)
        raise AssertionError(f"{dag_id} run {run_id} still {state} after {limit} s")

    def task_log(self, dag_id: str, run_id: str, task_id: str, attempt: int) -> str:
        out = self.airflow(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{attempt}?full_content=true",
        )
        content = out.get("content", out) if isinstance(out, dict) else out
        if isinstance(content, list):
            return "\n".join(
                c.get("event", json.dumps(c)) if isinstance(c, dict) else str(c) for c in content
            )
        return str(content)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        out = self.airflow("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {t["task_id"]: t for t in out["task_instances"]}

    def up(self) -> float:
        t0 = time.time()
        self.sh("scripts/stack.sh", "up", timeout=2400)
        return time.time() - t0


def engine_env() -> dict[str, str]:
    line = (
        subprocess.run(
            ["scripts/container-engine.sh", "start"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    key, _, value = line.partition("=")
    assert key == "DOCKER_HOST", line
    return {"DOCKER_HOST": value}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    WORK.mkdir(parents=True, exist_ok=True)
    secrets = WORK / "secrets"
    ports = {
        name: free_port()
        for name in ("api", "airflow", "mlflow", "prometheus", "proxy", "sidecar", "sink", "minio")
    }
    monitor = WORK / "monitor.yaml"
    env = {
        **os.environ,
        **engine_env(),
        "DRIFTWOOD_HOME": str(HOME),
        "DRIFTWOOD_STACK": PROJECT,
        "DRIFTWOOD_SECRETS_DIR": str(secrets),
        "DRIFTWOOD_STACK_SCHEDULES": "False",
        "DRIFTWOOD_STACK_MONITOR_CONFIG": str(monitor),
        "STACK_SEED": "0",
        **{
            f"DRIFTWOOD_STACK_{k.upper()}_PORT": str(v)
            for k, v in ports.items()
            if k not in ("sink", "minio")
        },
        "DRIFTWOOD_STACK_SLACK_SINK_PORT": str(ports["sink"]),
        "DRIFTWOOD_STACK_MINIO_CONSOLE_PORT": str(ports["minio"]),
    }
    s = Stack(env=env, ports=ports, secrets=secrets)
    # A fresh stack: the previous run's containers and volumes go first.
    s.sh(
        "docker-compose",
        "-f",
        "docker-compose.yml",
        "-p",
        PROJECT,
        "down",
        "-v",
        "--remove-orphans",
        check=False,
    )
    subprocess.run(["rm", "-rf", str(secrets)], check=True)
    secrets.mkdir(mode=0o700)
    # Slack messages go to the stack's stand-in receiver, where the test can read them.
    (secrets / "slack_webhook_url").write_text("http://slack-sink:8080/services/stack-test")
    # The shipped sidecar configuration with windows of one minute and one window to decide, so
    # that a drift decision takes minutes, not hours.
    shipped = (ROOT / "docker" / "evidently" / "monitor.yaml").read_text()
    monitor.write_text(
        shipped.replace("window_minutes: 60", "window_minutes: 1")
        .replace("schedule_seconds: 3600", "schedule_seconds: 0")
        .replace("  k: 2 ", "  k: 1 ")
        .replace("  n: 3 ", "  n: 1 ")
        .replace("  min_rows: 500 ", "  min_rows: 200 ")
    )
    yield s
    report = WORK / "timings.json"
    report.write_text(json.dumps(s.timings, indent=2))
    print(f"\nstack timings (s): {json.dumps(s.timings)}")
    if os.environ.get("DRIFTWOOD_STACK_KEEP") != "1":
        s.compose("down", "-v", "--remove-orphans")


def test_the_five_images_build_and_a_second_build_reuses_every_layer(stack: Stack) -> None:
    t0 = time.time()
    first = stack.sh("docker/build-images.sh", timeout=3000)
    stack.timings["images_first_build"] = round(time.time() - t0, 1)
    t0 = time.time()
    second = stack.sh("docker/build-images.sh", timeout=3000)
    stack.timings["images_second_build"] = round(time.time() - t0, 1)
    print(first.stdout, second.stdout)
    for image in IMAGES:
        user = stack.sh("docker", "image", "inspect", image, "--format", "{{.Config.User}}").stdout.strip()
        assert user and user.split(":")[0] not in ("", "root", "0"), f"{image} runs as {user!r}"
    # Every RUN of the second build came from the cache: no layer was rebuilt.
    for component in COMPONENTS:
        log = (HOME / "images" / f"build-{component}.log").read_text()
        steps = [line for line in log.splitlines() if " STEP " in line and " RUN " in line]
        cached = log.count("Using cache")
        assert steps, f"{component}: no RUN step in the build log"
        assert cached >= len(steps), (
            f"{component}: {len(steps)} RUN steps, {cached} from the cache\n{log[-3000:]}"
        )


def test_the_stack_comes_up_healthy(stack: Stack) -> None:
    stack.timings["stack_up_cold"] = round(stack.up(), 1)
    ps = stack.compose("ps").stdout
    for service in ("postgres", "mlflow", "airflow-apiserver", "airflow-worker", "api-blue", "evidently"):
        assert service in ps.replace(f"{PROJECT}_", ""), ps
    assert "unhealthy" not in ps, ps
    assert stack.http("GET", "mlflow", "/health")[0] == 200
    assert stack.http("GET", "api", "/health/live")[0] == 200


def test_churn_pipeline_runs_each_step_in_its_own_container_and_the_api_serves_its_version(
    stack: Stack,
) -> None:
    t0 = time.time()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=336)
    stack.sh(
        "docker", "run", "--rm", "--network", PROJECT, "-v", f"{PROJECT}-data:/var/lib/driftwood",
        "-e", "DRIFTWOOD_LAKE_URI=file:///var/lib/driftwood/lake", TASKS_IMAGE,
        "simulate", "--dataset", "churn", "--start", start.isoformat(), "--hours", "336",
        "--seed", "42", "--customers", "2000",
    )  # fmt: skip
    for dag in ("churn_pipeline", "churn_retrain"):
        deadline = time.time() + 300
        while True:
            try:
                stack.airflow("GET", f"/api/v2/dags/{dag}")
                break
            except AssertionError:
                if time.time() > deadline:
                    raise
                time.sleep(3)
        stack.airflow("PATCH", f"/api/v2/dags/{dag}", {"is_paused": False})
    run_id = stack.trigger("churn_pipeline", end.isoformat())
    state = stack.wait_run("churn_pipeline", run_id)
    tasks = stack.task_states("churn_pipeline", run_id)
    assert state == "success", {k: v["state"] for k, v in tasks.items()}
    for task in PIPELINE_TASKS:
        log = stack.task_log("churn_pipeline", run_id, task, tasks[task]["try_number"])
        # The DockerOperator's own line: the step ran as a container of the tasks image.
        assert f"Starting docker container from image {TASKS_IMAGE}" in log, f"{task}:\n{log[-2000:]}"
    version = stack.champion()
    assert version is not None, "promote registered no champion"
    stack.state["version"] = version
    # The API container picks the new champion up (it polls the registry).
    deadline = time.time() + 300
    body = json.loads((ROOT / "tests" / "stack" / "customer.json").read_text())
    status, out = 0, None
    while time.time() < deadline:
        status, out = stack.api("POST", "/v1/predict", body, user="smoke")
        if status == 200 and str(out["model"]["version"]) == version:
            break
        time.sleep(5)
    assert status == 200 and str(out["model"]["version"]) == version, (status, out)
    stack.timings["seed_to_served_champion"] = round(time.time() - t0, 1)


def drifted(row: dict[str, Any], rng: random.Random, i: int) -> dict[str, Any]:
    """The customer with prices tripled, activity gone and everyone on one plan: a shift no
    training window had."""
    out = dict(row)
    out["customer_id"] = f"D{i:06d}"
    out["monthly_charges"] = round(row["monthly_charges"] * 3 + rng.uniform(0, 40), 2)
    for name in ("sessions_3d", "sessions_7d", "sessions_30d", "minutes_30d", "purchases_30d"):
        out[name] = 0
    out["hours_since_last_session"] = 500 + rng.randint(0, 500)
    out["tickets_30d"] = 5 + rng.randint(0, 5)
    out["plan"] = "premium"
    return out


def test_drifted_traffic_makes_the_sidecar_start_exactly_one_retrain(stack: Stack) -> None:
    rng = random.Random(7)
    base = json.loads((ROOT / "tests" / "stack" / "customer.json").read_text())
    before = stack.airflow("GET", "/api/v2/dags/churn_retrain/dagRuns")["total_entries"]
    # The sidecar checks the last complete minute: the traffic fills one minute, then it is judged.
    while datetime.now(UTC).second > 30:
        time.sleep(1)
    window_start = datetime.now(UTC).replace(second=0, microsecond=0)
    sent = 0
    for batch in range(6):
        rows = [drifted(base, rng, batch * 100 + i) for i in range(100)]
        status, out = stack.api("POST", "/v1/predict/batch", {"rows": rows}, user="smoke")
        assert status == 200, out
        sent += len(rows)
    assert datetime.now(UTC) < window_start + timedelta(minutes=1), "the traffic spilled past its minute"
    time.sleep(max(0.0, (window_start + timedelta(minutes=1, seconds=5) - datetime.now(UTC)).total_seconds()))
    window = {"start": window_start.isoformat(), "end": (window_start + timedelta(minutes=1)).isoformat()}
    status, record = stack.http("POST", "sidecar", "/run", window)
    assert status == 200, record
    assert record["dataset_drift"] is True, record
    assert record["action"] == "trigger" and record["delivered"] is True, record
    # The same window judged again: the cooldown holds, no second request.
    status, again = stack.http("POST", "sidecar", "/run", window)
    assert status == 200 and again["action"] != "trigger", again
    runs = stack.airflow("GET", "/api/v2/dags/churn_retrain/dagRuns")
    assert runs["total_entries"] == before + 1, runs
    run_id = runs["dag_runs"][-1]["dag_run_id"]
    stack.state["retrain_run"] = run_id
    # Let the retrain finish before the restart, as an operator would.
    state = stack.wait_run("churn_retrain", run_id)
    assert state == "success", stack.task_states("churn_retrain", run_id)


def test_stack_down_and_up_keeps_runs_warehouse_and_champion(stack: Stack) -> None:
    exp = stack.http(
        "GET", "mlflow", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=driftwood-churn"
    )[1]
    status, runs = stack.http(
        "POST",
        "mlflow",
        "/api/2.0/mlflow/runs/search",
        {"experiment_ids": [exp["experiment"]["experiment_id"]]},
    )
    run_ids = {r["info"]["run_id"] for r in runs.get("runs", [])}
    assert run_ids, runs
    rows = warehouse_rows(stack)
    assert rows > 0
    champion = stack.champion()
    t0 = time.time()
    stack.sh("scripts/stack.sh", "down", timeout=600)
    stack.timings["stack_down"] = round(time.time() - t0, 1)
    # Up again with a contracts folder on the shared volume, for the failure test that follows.
    stack.env["DRIFTWOOD_STACK_CONTRACTS_DIR"] = "/var/lib/driftwood/contracts-under-test"
    stack.timings["stack_up_warm"] = round(stack.up(), 1)
    status, after = stack.http(
        "POST",
        "mlflow",
        "/api/2.0/mlflow/runs/search",
        {"experiment_ids": [exp["experiment"]["experiment_id"]]},
    )
    assert run_ids <= {r["info"]["run_id"] for r in after.get("runs", [])}
    assert warehouse_rows(stack) == rows
    assert stack.champion() == champion
    body = json.loads((ROOT / "tests" / "stack" / "customer.json").read_text())
    deadline = time.time() + 300
    status, out = 0, None
    while time.time() < deadline:
        status, out = stack.api("POST", "/v1/predict", body, user="smoke")
        if status == 200:
            break
        time.sleep(3)
    assert status == 200 and str(out["model"]["version"]) == champion, (status, out)


def warehouse_rows(stack: Stack) -> int:
    out = stack.compose(
        "exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "driftwood", "-tAc",
        "select count(*) from customers",
    )  # fmt: skip
    return int(out.stdout.strip())


def test_a_failing_step_container_fails_its_task_with_the_steps_error(stack: Stack) -> None:
    # A churn contract that does not parse, on the shared volume the steps read their contracts from.
    bad = "dataset: churn\nkind: tabular_classification\ncolumns: {this is: [not, a contract\n"
    folder = "/var/lib/driftwood/contracts-under-test"
    script = (
        f"mkdir -p {folder} && cp /app/contracts/* {folder}/ && printf '%s' '{bad}' > {folder}/churn.yaml"
    )
    stack.sh(
        "docker", "run", "--rm", "--user", "0:0", "-v", f"{PROJECT}-data:/var/lib/driftwood",
        "--entrypoint", "sh", TASKS_IMAGE, "-c", script,
    )  # fmt: skip
    run_id = stack.trigger("churn_pipeline", datetime.now(UTC).replace(microsecond=0).isoformat())
    assert stack.wait_run("churn_pipeline", run_id) == "failed"
    tasks = stack.task_states("churn_pipeline", run_id)
    assert tasks["ingest"]["state"] == "failed", tasks["ingest"]
    log = stack.task_log("churn_pipeline", run_id, "ingest", tasks["ingest"]["try_number"])
    # The step's own one-line error, from inside its container, is in the task log.
    assert f"Starting docker container from image {TASKS_IMAGE}" in log, log[-3000:]
    assert "driftwood ingest: CONFIG_INVALID: contract" in log and "churn.yaml: not valid YAML" in log, log[
        -3000:
    ]
    # Nothing after the failed step ran.
    assert all(tasks[t]["state"] in (None, "upstream_failed") for t in PIPELINE_TASKS[1:]), tasks
