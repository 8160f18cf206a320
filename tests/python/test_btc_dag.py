"""The btc DAGs: hourly ``extract → ingest`` and daily ``train → promote``, made by the DAG factory
from contracts/btc.yaml like the churn DAGs. DagBag integrity, the command each runner renders, and one real
``airflow dags test btc_forecast`` run that fetches the run's hour from a local HTTP server standing in
for the exchange, lands it in the lake and ingests it into a SQLite warehouse."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import driftwood_notify
import driftwood_steps
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.serialization.serialized_objects import DagSerialization
from orchestration_support import airflow_home, run_airflow

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILE = str(DAGS / "driftwood_dags.py")
EXCHANGE_PORT = 7240
SOURCE_TEMPLATE = '{{ var.value.get("driftwood_btc_source", "") }}'
INTERVAL_TEMPLATE = "{{ data_interval_start }}/{{ data_interval_end }}"
# What the factory gives a forecast dataset's steps: the run's data interval.
BTC_STEPS = driftwood_steps.dataset_steps("btc", driftwood_steps.INTERVAL_END)


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=DAG_FILE)


def test_both_dags_import_without_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert {"btc_forecast", "btc_retrain"} <= set(dagbag.dags)


@pytest.mark.parametrize("dag_id", ["btc_forecast", "btc_retrain"])
def test_dags_are_tagged_documented_safe_and_retry(dagbag: DagBag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert {"driftwood", "btc"} <= set(dag.tags)
    assert dag.doc_md and dag.doc_md.startswith(f"# {dag_id}: the ")
    assert "Hourly BTC/USD candles" in dag.doc_md  # the contract's description
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        where = f"{dag_id}.{task.task_id}"
        assert task.retries >= 2, where
        assert task.retry_exponential_backoff, where
        assert task.max_retry_delay == driftwood_steps.MAX_RETRY_DELAY, where
        assert task.execution_timeout is not None, where
        assert task.skip_on_exit_code == [driftwood_steps.EXIT_GATE_NOT_PASSED], where
        assert any(isinstance(cb, driftwood_notify.DriftwoodSlackNotifier) for cb in task.on_failure_callback)
    # Only the last step reports success and a gate not passed (not mlflow_evaluate, which follows it).
    last = next(t for t in reversed(dag.topological_sort()) if t.task_id != "mlflow_evaluate")
    assert last.on_success_callback and last.on_skipped_callback
    assert all(not t.on_success_callback for t in dag.tasks if t is not last)


def test_no_cycles_and_the_expected_order(dagbag: DagBag) -> None:
    hourly = dagbag.dags["btc_forecast"]
    assert [t.task_id for t in hourly.topological_sort()] == ["extract", "ingest"]
    assert hourly.get_task("ingest").upstream_task_ids == {"extract"}
    daily = dagbag.dags["btc_retrain"]
    assert [t.task_id for t in daily.topological_sort()] == ["train", "promote", "mlflow_evaluate"]
    # The forecast version's MLflow evaluation (a regressor's) by the contract's model name.
    assert daily.get_task("mlflow_evaluate").bash_command.endswith(
        "-m driftwood_mlflow.evaluate --model btc --alias challenger"
    )


def _scheduled(dag: Any) -> Any:
    """The timetable the scheduler works with: the DAG as stored, read back."""
    return DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable


def test_hourly_runs_cover_the_hour_that_closed_and_retrain_is_daily(dagbag: DagBag) -> None:
    assert type(dagbag.dags["btc_forecast"].timetable).__name__ == "CronTriggerTimetable"
    hourly = _scheduled(dagbag.dags["btc_forecast"])
    at = datetime(2026, 11, 20, 5, tzinfo=UTC)
    interval = hourly.infer_manual_data_interval(run_after=at)
    assert (interval.start, interval.end) == (at - timedelta(hours=1), at)
    daily = _scheduled(dagbag.dags["btc_retrain"])
    assert daily.summary == "30 0 * * *"
    day = daily.infer_manual_data_interval(run_after=datetime(2026, 11, 21, 0, 30, tzinfo=UTC))
    assert day.end - day.start == timedelta(days=1)


def test_process_runner_renders_each_command(dagbag: DagBag) -> None:
    tasks = {t.task_id: t for d in ("btc_forecast", "btc_retrain") for t in dagbag.dags[d].tasks}
    cli = str(driftwood_steps.project_root() / "tasks" / "dist" / "cli.js")
    assert tasks["extract"].bash_command == (
        f"node {cli} extract --dataset btc --source '{SOURCE_TEMPLATE}' --interval '{INTERVAL_TEMPLATE}'"
    )
    assert (
        tasks["ingest"].bash_command
        == f"node {cli} ingest --dataset btc --until '{{{{ data_interval_end }}}}'"
    )
    assert tasks["train"].bash_command == (
        f"node {cli} train --dataset btc --snapshot-as-of '{{{{ data_interval_end }}}}'"
    )
    assert tasks["promote"].bash_command == f"node {cli} promote --dataset btc --alias champion"
    assert tasks["extract"].execution_timeout == timedelta(minutes=10)
    assert tasks["train"].execution_timeout == timedelta(minutes=60)


def test_docker_runner_renders_the_extract_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWOOD_TASKS_IMAGE", "registry.example/driftwood-tasks:1.2.3")
    task = driftwood_steps.step_task(BTC_STEPS["extract"], runner="docker")
    assert isinstance(task, DockerOperator)
    assert task.command == [
        "extract",
        "--dataset",
        "btc",
        "--source",
        SOURCE_TEMPLATE,
        "--interval",
        INTERVAL_TEMPLATE,
    ]
    assert task.skip_on_exit_code == [99]


def test_kubernetes_runner_renders_train_with_its_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWOOD_TASKS_IMAGE", "registry.example/driftwood-tasks:1.2.3")
    train = driftwood_steps.step_task(BTC_STEPS["train"], runner="kubernetes")
    assert isinstance(train, KubernetesPodOperator)
    assert train.cmds == ["node", "/app/tasks/dist/cli.js"]
    assert train.arguments == ["train", "--dataset", "btc", "--snapshot-as-of", "{{ data_interval_end }}"]
    assert train.container_resources.limits == {"cpu": "2", "memory": "4Gi"}
    ingest = driftwood_steps.step_task(BTC_STEPS["ingest"], runner="kubernetes")
    assert ingest.arguments == ["ingest", "--dataset", "btc", "--until", "{{ data_interval_end }}"]
    assert ingest.container_resources.requests == {"cpu": "250m", "memory": "512Mi"}


# --- one real run -------------------------------------------------------------------------------


class Exchange(ThreadingHTTPServer):
    """Answers `GET /api/klines?start=&end=` with one kline array per hour of [start, end)."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _ExchangeHandler)
        self.requests: list[dict[str, list[str]]] = []


class _ExchangeHandler(BaseHTTPRequestHandler):
    server: Exchange

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.server.requests.append(query)
        start = datetime.fromisoformat(query["start"][0].replace("Z", "+00:00"))
        end = datetime.fromisoformat(query["end"][0].replace("Z", "+00:00"))
        klines = []
        t = start
        while t < end:
            ms = int(t.timestamp() * 1000)
            klines.append([ms, "91000.5", "91200", "90850.25", "91100", "3.75", ms + 3_599_999])
            t += timedelta(hours=1)
        body = json.dumps(klines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def exchange() -> Iterator[Exchange]:
    server = Exchange(EXCHANGE_PORT)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def hourly_run(exchange: Exchange, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("btc-home")
    dags = tmp_path_factory.mktemp("btc-dags")
    # Only the factory in the folder (its helpers come from PYTHONPATH): no other DAG file parses.
    (dags / "driftwood_dags.py").write_text(Path(DAG_FILE).read_text())
    env = airflow_home(
        "airflow-btc-forecast",
        dags,
        {
            "DRIFTWOOD_RUNNER": "process",
            "DRIFTWOOD_HOME": str(home),
            "AIRFLOW_VAR_DRIFTWOOD_BTC_SOURCE": f"http://127.0.0.1:{EXCHANGE_PORT}/api/klines?symbol=BTCUSDT",
            "LOG_LEVEL": "info",
        },
    )
    result = run_airflow(["dags", "test", "btc_forecast", "2026-11-20T05:00:00+00:00"], env, timeout=600)
    return {"result": result, "home": home, "requests": list(exchange.requests)}


def test_a_real_hourly_run_extracts_and_ingests_the_hour_that_closed(hourly_run: dict[str, Any]) -> None:
    result = hourly_run["result"]
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # The data interval reached the exchange as the hour [04:00, 05:00).
    assert hourly_run["requests"] == [
        {"symbol": ["BTCUSDT"], "start": ["2026-11-20T04:00:00Z"], "end": ["2026-11-20T05:00:00Z"]}
    ], output[-4000:]
    lake = hourly_run["home"] / "lake"
    landed = lake / "raw" / "btc" / "dt=2026-11-20" / "hr=04" / "candles.csv"
    assert landed.read_text() == (
        "open_time,open,high,low,close,volume\n2026-11-20T04:00:00Z,91000.5,91200,90850.25,91100,3.75\n"
    )
    reports = sorted((lake / "reports" / "extract" / "btc").glob("*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert report["candles"] == {
        "fetched": 1,
        "landed": 1,
        "quarantined": 0,
        "identicalDuplicates": 0,
        "outsideInterval": 0,
    }
    assert report["gaps"] == []
    db = sqlite3.connect(hourly_run["home"] / "warehouse.db")
    try:
        rows = db.execute("SELECT open_time, close, source_key FROM candles").fetchall()
        ledger = db.execute("SELECT object_key, status FROM ingest_ledger WHERE dataset = 'btc'").fetchall()
    finally:
        db.close()
    hour = int(datetime(2026, 11, 20, 4, tzinfo=UTC).timestamp() * 1000)
    assert rows == [(hour, 91100.0, "raw/btc/dt=2026-11-20/hr=04/candles.csv")]
    assert ledger == [("raw/btc/dt=2026-11-20/hr=04/candles.csv", "loaded")]
    # Both steps ran to success under Airflow (the ingest result file is the step's own output).
    results = json.loads((hourly_run["home"] / "results" / "ingest.json").read_text())
    assert results["loaded"] == 1 and results["dataset"] == "btc"
