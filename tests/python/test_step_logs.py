"""Readable task logs of Driftwood steps, whichever runner carries them.

The formatter on the lines steps really write (pino JSON, the CLI's failure line, a stack trace,
the result); the exit contract shared by the runners; the Kubernetes runner reading a pod's log and
judging its exit through the provider's own code, against a stand-in Kubernetes API (no cluster
here); the Docker runner's log path through the provider's own log fetching; and one real
``airflow dags test`` (process runner, the built CLI, a real MLflow server) in which a train that
fails on missing data logs its code and message at ERROR and fails with them, without a retry,
and a train that succeeds, and the evaluate after it, link the MLflow run.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
import subprocess
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import driftwood_steps
import pytest
from airflow.providers.docker.operators.docker import fetch_logs
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from driftwood_step_logs import StepLog, format_value, mlflow_run_url, mlflow_ui_url
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s
from orchestration_support import ROOT, airflow_home, mlflow_server, run_airflow

MLFLOW_PORT = 5164
SNAPSHOT_ID = "705d93fc3581208a5570f6d2e95418750114c23dc373dca9c1215ef09ab89d83"
RUN_ID = "7bd900ee9d154740942de75fc41d8c78"
# The model-training view: MLflow's UI opens experiments in its GenAI view otherwise.
VIEW = "workflowType=machine_learning"


def pino(msg: str, level: int = 30, **fields: Any) -> str:
    """A line as the steps' pino logger writes it."""
    record = {"level": level, "time": 1796622198514, "pid": 30152, "hostname": "vm", "name": "driftwood"}
    return json.dumps({**record, **fields, "msg": msg})


def read(*lines: str, ui: str | None = "http://mlflow.example:5000") -> tuple[StepLog, list[tuple[int, str]]]:
    step = StepLog(logging.getLogger("test.step"), ui)
    out = [entry for line in lines for entry in step.lines(line)]
    return step, out


# --- the formatter ----------------------------------------------------------------------------------


def test_a_pino_line_reads_as_its_message_and_fields_without_noise() -> None:
    _, out = read(
        pino(
            "train: features read from the features artifact",
            rows=503,
            cutoff="2026-11-02T23:00:00.000Z",
            snapshot=SNAPSHOT_ID,
            features=f"features/churn/{SNAPSHOT_ID}",
            ms=315,
            dataset="churn",
        )
    )
    assert out == [
        (
            logging.INFO,
            "train: features read from the features artifact dataset=churn snapshot=705d93fc3581… "
            "rows=503 cutoff=2026-11-02T23:00:00.000Z features=features/churn/705d93fc3581… ms=315",
        )
    ]
    for noise in ("time=", "pid=", "hostname=", "name=", "level=", "{"):
        assert noise not in out[0][1]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.7849462365591398, "0.7849"),
        (503, "503"),
        (True, "true"),
        (None, "null"),
        ("churn logistic 705d93fc 12-07 05:43", '"churn logistic 705d93fc 12-07 05:43"'),
        # An MLflow run id (32 hex digits) stays whole; a content digest is cut to 12.
        (RUN_ID, RUN_ID),
        (SNAPSHOT_ID, "705d93fc3581…"),
        (["ok", "FAILED"], "ok,FAILED"),
        ({"lower": 0.51, "upper": 0.62}, '{"lower":0.51,"upper":0.62}'),
        ("x" * 300, "x" * 119 + "…"),
        ({"k": "v" * 200}, '{"k":"' + "v" * 73 + "…"),
    ],
)
def test_values_read_short(value: Any, shown: str) -> None:
    assert format_value(value) == shown


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (10, logging.DEBUG),
        (20, logging.DEBUG),
        (30, logging.INFO),
        (40, logging.WARNING),
        (60, logging.CRITICAL),
    ],
)
def test_pino_levels_map_to_python_levels(level: int, expected: int) -> None:
    _, out = read(pino("ingest: something", level=level))
    assert out == [(expected, "ingest: something")]


def test_the_cli_failure_line_is_the_error_with_its_code() -> None:
    step, out = read(
        pino("train: the snapshot has no features yet; running the features step"),
        "driftwood train: DATA_MISSING: no churn data in the warehouse: ingest first",
    )
    line = "driftwood train: DATA_MISSING: no churn data in the warehouse: ingest first"
    assert out[-1] == (logging.ERROR, line)
    assert step.error == "DATA_MISSING: no churn data in the warehouse: ingest first"


def test_an_error_logged_by_pino_carries_its_code() -> None:
    step, out = read(
        pino(
            "MLflow refused the request",
            level=50,
            err={"type": "DriftwoodError", "code": "MLFLOW_ERROR"},
            status=404,
        )
    )
    assert out == [(logging.ERROR, "MLFLOW_ERROR: MLflow refused the request status=404")]
    assert step.error == "MLFLOW_ERROR: MLflow refused the request"


@pytest.mark.parametrize("code", ["NOTHING_NEW", "GATE_NOT_PASSED"])
def test_nothing_to_act_on_is_a_warning_not_an_error(code: str) -> None:
    step, out = read(f"driftwood promote: {code}: ROC AUC 0.71 is not above the champion's 0.74")
    assert out == [
        (logging.WARNING, f"driftwood promote: {code}: ROC AUC 0.71 is not above the champion's 0.74")
    ]
    assert step.error == f"{code}: ROC AUC 0.71 is not above the champion's 0.74"


def test_an_unexpected_error_keeps_its_stack_trace_at_error() -> None:
    step, out = read(
        "driftwood train: unexpected error: SqliteError: no such table: candles",
        "    at Database.prepare (/app/node_modules/better-sqlite3/lib/methods/wrappers.js:5:21)",
        "plain text again",
    )
    assert [level for level, _ in out] == [logging.ERROR, logging.ERROR, logging.INFO]
    assert step.error == "unexpected error: SqliteError: no such table: candles"


def test_a_message_of_several_lines_is_read_line_by_line(caplog: pytest.LogCaptureFixture) -> None:
    step = StepLog(logging.getLogger("test.step"), None)
    with caplog.at_level(logging.DEBUG, logger="test.step"):
        step.read(
            "driftwood train: unexpected error: TypeError: x is undefined\n    at run (/app/cli.js:1:1)"
        )
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "driftwood train: unexpected error: TypeError: x is undefined"),
        (logging.ERROR, "    at run (/app/cli.js:1:1)"),
    ]
    assert step.error == "unexpected error: TypeError: x is undefined"


@pytest.mark.parametrize("line", ["plain text from a step", "[1, 2, 3]", "{not json}", ""])
def test_lines_that_are_not_a_json_object_pass_through(line: str) -> None:
    step, out = read(line)
    assert out == [(logging.INFO, line)]
    assert step.error is None


def test_the_result_line_shows_its_plain_fields_and_names_the_nested_ones() -> None:
    result = {"runId": RUN_ID, "modelVersion": "3", "rows": {"train": 315}, "metrics": {"roc_auc": 0.81}}
    _, out = read(json.dumps(result), ui=None)
    assert out == [(logging.INFO, f"result: runId={RUN_ID} modelVersion=3 nested: rows,metrics")]


def test_a_logged_run_id_is_linked_once_to_its_mlflow_page() -> None:
    started = pino("train: MLflow run started", runId=RUN_ID, runName="churn logistic", experimentId="7")
    _, out = read(started, pino("train: done"), json.dumps({"runId": RUN_ID, "experimentId": "7"}))
    links = [text for _, text in out if text.startswith("MLflow run: ")]
    assert links == [f"MLflow run: http://mlflow.example:5000/#/experiments/7/runs/{RUN_ID}?{VIEW}"]
    # The link follows the line that named the run.
    assert out[1] == (logging.INFO, links[0])


def test_a_run_without_its_experiment_gets_mlflow_s_direct_run_route() -> None:
    _, out = read(pino("evaluate: scored", run_id=RUN_ID))
    assert out[-1] == (logging.INFO, f"MLflow run: http://mlflow.example:5000/#/runs/{RUN_ID}?{VIEW}")
    assert mlflow_run_url("http://m", "r/1", "2") == "http://m/#/experiments/2/runs/r%2F1?" + VIEW


@pytest.mark.parametrize(
    ("env", "ui"),
    [
        ({"MLFLOW_TRACKING_URI": "http://127.0.0.1:5164/"}, "http://127.0.0.1:5164"),
        # Credentials never reach a log line.
        (
            {"MLFLOW_TRACKING_URI": "https://user:s3cret@mlflow.example/mlflow/"},
            "https://mlflow.example/mlflow",
        ),
        # The URL people open (the dashboard's link too) wins over the URL the steps call.
        (
            {
                "MLFLOW_TRACKING_URI": "http://mlflow:5000",
                "DRIFTWOOD_MLFLOW_UI_URL": "https://mlflow.example.org",
            },
            "https://mlflow.example.org",
        ),
        # A tracking URI that is not a server has no UI to link to.
        ({"MLFLOW_TRACKING_URI": "file:///var/lib/mlruns"}, None),
        ({}, None),
    ],
)
def test_the_mlflow_ui_comes_from_the_settings(env: dict[str, str], ui: str | None) -> None:
    assert mlflow_ui_url(env) == ui


def test_no_link_without_an_mlflow_ui() -> None:
    _, out = read(pino("train: MLflow run started", runId=RUN_ID, experimentId="1"), ui=None)
    assert [text for _, text in out if "MLflow run:" in text] == []


# --- the exit contract, the same for every runner ---------------------------------------------------


@pytest.mark.parametrize(
    ("exit_code", "raised"),
    [(2, AirflowFailException), (99, AirflowSkipException), (1, AirflowException), (137, AirflowException)],
)
def test_an_exit_code_maps_to_fail_skip_or_retry_with_the_step_s_words(
    exit_code: int, raised: type[Exception]
) -> None:
    outcome = driftwood_steps.step_outcome("train", exit_code, "DATA_MISSING: no churn data")
    assert type(outcome) is raised
    assert str(outcome).startswith("DATA_MISSING: no churn data (exit ")
    assert driftwood_steps.step_outcome("train", 0, None) is None
    # Without the step's words, the exit code is what the failure says.
    assert str(driftwood_steps.step_outcome("train", exit_code, None)).startswith(
        f"driftwood train exited {exit_code} "
    )


def terminated_pod(exit_code: int | None, container: str = "base") -> k8s.V1Pod:
    if exit_code is None:
        state = k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason="ImagePullBackOff"))
    else:
        # Just now: the provider reads a terminated container's log for a while after it ended.
        finished = datetime.now(UTC)
        state = k8s.V1ContainerState(
            terminated=k8s.V1ContainerStateTerminated(exit_code=exit_code, finished_at=finished)
        )
    status = k8s.V1ContainerStatus(
        name=container, image="tasks", image_id="", ready=False, restart_count=0, state=state
    )
    phase = "Succeeded" if exit_code == 0 else "Failed"
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="driftwood-train-x", namespace="driftwood-staging"),
        status=k8s.V1PodStatus(phase=phase, container_statuses=[status]),
    )


def test_the_pod_exit_code_is_the_step_container_s() -> None:
    assert driftwood_steps.pod_exit_code(terminated_pod(2), "base") == 2
    assert driftwood_steps.pod_exit_code(terminated_pod(99), "base") == 99
    assert driftwood_steps.pod_exit_code(terminated_pod(2, container="sidecar"), "base") is None
    assert driftwood_steps.pod_exit_code(terminated_pod(None), "base") is None
    assert driftwood_steps.pod_exit_code(k8s.V1Pod(status=None), "base") is None


# --- the Kubernetes runner against a stand-in Kubernetes API ---------------------------------------

POD_LOG = [
    pino("train: MLflow run started", runId=RUN_ID, runName="churn logistic", experimentId="4"),
    "driftwood train: DATA_MISSING: no churn data in the warehouse: ingest first",
]


class KubeApi(ThreadingHTTPServer):
    """Answers the calls the pod operator makes once its pod has run: read the pod, follow its log,
    label it as checked."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _KubeHandler)
        self.pod: dict[str, Any] = {}
        self.calls: list[tuple[str, str]] = []


class _KubeHandler(BaseHTTPRequestHandler):
    server: KubeApi

    def _answer(self) -> None:
        self.server.calls.append((self.command, urllib.parse.urlsplit(self.path).path))
        if urllib.parse.urlsplit(self.path).path.endswith("/log"):
            stamp = "2026-11-20T00:00:0{}.000000000Z"
            body = "".join(f"{stamp.format(i)} {line}\n" for i, line in enumerate(POD_LOG)).encode()
            kind = "text/plain"
        else:
            body, kind = json.dumps(self.server.pod).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KubeApi, Path]]:
    server = KubeApi()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = tmp_path_factory.mktemp("kube") / "config"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "stand-in", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
                ],
                "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "nobody"}}],
                "current-context": "stand-in",
                "users": [{"name": "nobody", "user": {}}],
            }
        )
    )
    yield server, config
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("exit_code", "raised"), [(2, AirflowFailException), (99, AirflowSkipException), (1, AirflowException)]
)
def test_the_pod_runner_logs_the_step_readably_and_honours_its_exit_code(
    kube_api: tuple[KubeApi, Path],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    exit_code: int,
    raised: type[Exception],
) -> None:
    server, config = kube_api
    monkeypatch.setenv("DRIFTWOOD_K8S_NAMESPACE", "driftwood-staging")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    monkeypatch.delenv("DRIFTWOOD_MLFLOW_UI_URL", raising=False)
    train = driftwood_steps.dataset_steps("churn")["train"]
    task = driftwood_steps.step_task(train, runner="kubernetes", config_file=str(config))
    # The pod the operator would create, as the API reports it once the step has exited.
    pod = task.build_pod_request_obj(dry_run=True)
    pod.status = terminated_pod(exit_code).status
    server.pod = ApiClient().sanitize_for_serialization(pod)
    server.calls.clear()
    # The provider's own log following, then its own judgement of the finished pod.
    task.await_pod_completion(pod)
    with pytest.raises(raised) as caught:
        task.cleanup(pod=pod, remote_pod=pod)
    assert type(caught.value) is raised
    assert str(caught.value).startswith("DATA_MISSING: no churn data in the warehouse: ingest first (exit ")
    where = f"/api/v1/namespaces/driftwood-staging/pods/{pod.metadata.name}"
    assert ("GET", f"{where}/log") in server.calls and ("PATCH", where) in server.calls
    lines = task_lines(capfd.readouterr().out, "driftwood.train")
    assert lines == [
        ("info", f'train: MLflow run started runId={RUN_ID} runName="churn logistic" experimentId=4'),
        ("info", f"MLflow run: http://mlflow.example:5000/#/experiments/4/runs/{RUN_ID}?{VIEW}"),
        ("error", "driftwood train: DATA_MISSING: no churn data in the warehouse: ingest first"),
    ]


# --- the Docker runner's log path -------------------------------------------------------------------


def test_the_docker_runner_logs_container_lines_readably(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.delenv("DRIFTWOOD_DOCKER_VOLUMES", raising=False)
    task = driftwood_steps.step_task("ingest", ["--dataset", "churn"], runner="docker")
    warning = pino("ingest: no objects under raw/churn/", level=40, dataset="churn", lake="s3://lake")
    failure = "driftwood ingest: NOTHING_NEW: no objects under raw/churn/\n"
    # The attached stream as Docker sends it: chunks that cut lines anywhere.
    stream = [warning[:40].encode(), (warning[40:] + "\n" + failure[:25]).encode(), failure[25:].encode()]
    fetch_logs(iter(stream), task.log)
    assert task.step_log.error == "NOTHING_NEW: no objects under raw/churn/"
    assert task_lines(capfd.readouterr().out, "driftwood.ingest") == [
        ("warning", "ingest: no objects under raw/churn/ dataset=churn lake=s3://lake"),
        ("warning", "driftwood ingest: NOTHING_NEW: no objects under raw/churn/"),
    ]


# --- one real run under `airflow dags test` ---------------------------------------------------------

PROBE_DAG = """
from datetime import datetime, timezone

from airflow.sdk import dag

from driftwood_steps import step_task


@dag(dag_id="driftwood_step_logs_probe", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc))
def probe():
    train = step_task("train", ["--dataset", "churn", "--snapshot-as-of", "latest"], retries=0)
    train >> step_task("evaluate", ["--dataset", "churn"], retries=0)
    # Before the data begins: DATA_MISSING, exit 2. Retries stay at the default: none may happen.
    too_early = ["--dataset", "churn", "--snapshot-as-of", "2026-10-01T00:00:00Z"]
    step_task("train", too_early, task_id="train_too_early")


probe()
"""

# The console lines of `airflow dags test`: time, [level], event, [logger], key=value…
CONSOLE_LINE = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<event>.*?) +\[(?P<logger>[^\]\s]+)\](?: \S+=.*)?$")


def task_lines(output: str, logger: str) -> list[tuple[str, str]]:
    """(level, text) of the console lines the named step logger wrote."""
    found = []
    for line in output.splitlines():
        m = CONSOLE_LINE.match(line)
        if m and m["logger"] == f"airflow.task.operators.{logger}" and "loc=driftwood_step_logs.py" in line:
            found.append((m["level"], m["event"]))
    return found


def _cli(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        ["node", str(ROOT / "tasks" / "dist" / "cli.js"), *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("step-logs-home")
    dags = tmp_path_factory.mktemp("step-logs-dags")
    (dags / "probe.py").write_text(PROBE_DAG)
    experiment = f"step-logs-{uuid.uuid4().hex[:8]}"
    with mlflow_server(MLFLOW_PORT) as mlflow_uri:
        step_env = {
            "DRIFTWOOD_RUNNER": "process",
            "DRIFTWOOD_HOME": str(home),
            "MLFLOW_TRACKING_URI": mlflow_uri,
            "DRIFTWOOD_EXPERIMENT": experiment,
            "DRIFTWOOD_MODEL_NAME": experiment,
            "DRIFTWOOD_PII_KEY": secrets.token_hex(16),
            "LOG_LEVEL": "info",
        }
        env = airflow_home("airflow-step-logs", dags, step_env)
        env.pop("DRIFTWOOD_MLFLOW_UI_URL", None)
        # Five simulated days in the warehouse: small enough to train in seconds.
        _cli(["simulate", "--dataset", "churn", "--start", "2026-11-01T00:00Z", "--hours", "120"], env)
        _cli(["ingest", "--dataset", "churn", "--until", "2026-11-06T00:00Z"], env)
        result = run_airflow(["dags", "test", "driftwood_step_logs_probe", "2026-11-20T00:00:00+00:00"], env)
        db = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
        try:
            states = {
                task: (state, tries)
                for task, state, tries in db.execute(
                    "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?",
                    ("driftwood_step_logs_probe",),
                )
            }
        finally:
            db.close()
        yield {
            "output": result.stdout + result.stderr,
            "states": states,
            "home": home,
            "mlflow": mlflow_uri,
            "experiment": experiment,
        }


def test_a_failing_step_logs_its_code_and_message_at_error_and_is_not_retried(
    probe_run: dict[str, Any],
) -> None:
    output = probe_run["output"]
    assert probe_run["states"]["train_too_early"] == ("failed", 1), output[-6000:]
    errors = [text for level, text in task_lines(output, "driftwood.train_too_early") if level == "error"]
    assert len(errors) == 1, output[-6000:]
    said = errors[0].removeprefix("driftwood train: ")
    assert errors[0] != said and said.startswith(
        "DATA_MISSING: no churn snapshot as of 2026-10-01T00:00:00.000Z: "
    )
    # The exception Airflow records says the same, not "Bash command failed".
    assert f"AirflowFailException: {said} (exit 2: " in output
    assert "Bash command failed" not in output


def test_step_lines_are_plain_text_not_json(probe_run: dict[str, Any]) -> None:
    output = probe_run["output"]
    lines = task_lines(output, "driftwood.train") + task_lines(output, "driftwood.train_too_early")
    assert len(lines) >= 5, output[-6000:]
    assert all(not text.lstrip().startswith("{") for _, text in lines), lines
    # No pino record reached the log in any form.
    assert '"level":' not in output and '"pid":' not in output


def test_a_successful_train_links_its_mlflow_run(probe_run: dict[str, Any]) -> None:
    output = probe_run["output"]
    assert probe_run["states"]["train"] == ("success", 1), output[-6000:]
    trained = json.loads((probe_run["home"] / "results" / "train.json").read_text())
    run_id, experiment_id = trained["runId"], trained["experimentId"]
    url = f"{probe_run['mlflow']}/#/experiments/{experiment_id}/runs/{run_id}?{VIEW}"
    assert task_lines(output, "driftwood.train").count(("info", f"MLflow run: {url}")) == 1, output[-6000:]
    # The link names a real run of the step's experiment.
    query = urllib.parse.urlencode({"run_id": run_id})
    with urllib.request.urlopen(f"{probe_run['mlflow']}/api/2.0/mlflow/runs/get?{query}", timeout=30) as res:
        run = json.loads(res.read())["run"]
    assert run["info"]["experiment_id"] == experiment_id
    query = urllib.parse.urlencode({"experiment_id": experiment_id})
    with urllib.request.urlopen(
        f"{probe_run['mlflow']}/api/2.0/mlflow/experiments/get?{query}", timeout=30
    ) as res:
        assert json.loads(res.read())["experiment"]["name"] == probe_run["experiment"]


def test_evaluate_links_the_run_it_wrote_the_evidence_to(probe_run: dict[str, Any]) -> None:
    output = probe_run["output"]
    assert probe_run["states"]["evaluate"] == ("success", 1), output[-6000:]
    trained = json.loads((probe_run["home"] / "results" / "train.json").read_text())
    url = f"{probe_run['mlflow']}/#/experiments/{trained['experimentId']}/runs/{trained['runId']}?{VIEW}"
    assert ("info", f"MLflow run: {url}") in task_lines(output, "driftwood.evaluate"), output[-6000:]
