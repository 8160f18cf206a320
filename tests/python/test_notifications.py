"""Slack notifications for real: a small DAG built with the project's step helper runs under
`airflow dags test`; one task runs the CLI's help (success), one calls the CLI with a bad flag
(failure). The Slack provider posts to a local HTTP receiver standing in for the incoming webhook,
through the ``driftwood_slack`` connection, and the test reads what arrived."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
from orchestration_support import airflow_home, run_airflow

RECEIVER_PORT = 7420
PROBE_DAG = """
from datetime import datetime, timezone

from airflow.sdk import dag

from driftwood_steps import step_task


@dag(dag_id="driftwood_notify_probe", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc))
def probe():
    step_task("help", retries=0, notify_success=True)
    step_task("train", ["--no-such-flag"], retries=0)


probe()
"""


class Receiver(ThreadingHTTPServer):
    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.posts: list[tuple[str, dict[str, Any]]] = []


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts.append((self.path, json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver(RECEIVER_PORT)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def probe_run(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    dags = tmp_path_factory.mktemp("notify-dags")
    (dags / "probe.py").write_text(PROBE_DAG)
    webhook = f"http://127.0.0.1:{RECEIVER_PORT}/services/T000/B000/probe"
    env = airflow_home(
        "airflow-notify",
        dags,
        {
            "AIRFLOW_CONN_DRIFTWOOD_SLACK": json.dumps({"conn_type": "slackwebhook", "password": webhook}),
            "AIRFLOW__API__BASE_URL": "http://airflow.example:8080/",
            "DRIFTWOOD_RUNNER": "process",
        },
    )
    result = run_airflow(["dags", "test", "driftwood_notify_probe", "2026-11-20T00:00:00+00:00"], env)
    return {"result": result, "posts": list(receiver.posts), "env": env}


def _message_for(posts: list[tuple[str, dict[str, Any]]], task_id: str) -> tuple[str, str]:
    matching = [(path, body["text"]) for path, body in posts if f"task `{task_id}`" in body.get("text", "")]
    assert len(matching) == 1, f"expected one message for {task_id}, got {posts}"
    return matching[0]


def test_a_failed_task_posts_dag_task_run_id_and_log_url(probe_run: dict[str, Any]) -> None:
    result = probe_run["result"]
    # The DAG run fails because `train --no-such-flag` exits 2 (usage): the failure path ran.
    assert "failed" in (result.stdout + result.stderr).lower()
    path, text = _message_for(probe_run["posts"], "train")
    assert path == "/services/T000/B000/probe"
    assert text.startswith(":red_circle: Driftwood task failed")
    assert "DAG `driftwood_notify_probe`" in text
    run_id = text.split("run `", 1)[1].split("`", 1)[0]
    assert re.fullmatch(r"manual__\d{4}-\d\d-\d\dT[\d:.]+\+00:00", run_id), run_id
    assert "try 1" in text
    log_url = f"http://airflow.example:8080/dags/driftwood_notify_probe/runs/{quote(run_id)}/tasks/train?try_number=1"
    assert text.endswith(f"Log: {log_url}")


def test_the_last_task_posts_success(probe_run: dict[str, Any]) -> None:
    _, text = _message_for(probe_run["posts"], "help")
    assert text.startswith(":large_green_circle: Driftwood run succeeded")
    assert "/tasks/help?try_number=1" in text
    # Exactly two messages: no success message for the failed task, no failure one for the good task.
    assert len(probe_run["posts"]) == 2


def test_without_the_connection_nothing_is_posted(receiver: Receiver, probe_run: dict[str, Any]) -> None:
    before = len(receiver.posts)
    env = {k: v for k, v in probe_run["env"].items() if k != "AIRFLOW_CONN_DRIFTWOOD_SLACK"}
    result = run_airflow(["dags", "test", "driftwood_notify_probe", "2026-11-21T00:00:00+00:00"], env)
    output = result.stdout + result.stderr
    # Both callbacks ran (success of `help`, failure of `train`) and stood down quietly.
    assert output.count("notification not sent: no Airflow connection 'driftwood_slack'") == 2, output[-3000:]
    assert len(receiver.posts) == before
