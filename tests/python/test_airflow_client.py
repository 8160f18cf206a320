"""The sidecar's HTTP and Airflow client against a real local HTTP server (a socket, scripted replies):
bounded retries with backoff on failed connections, timeouts, 429 and 5xx, never on a 4xx; a
non-idempotent call repeated only when the server cannot have acted; the Airflow login renewed
once on 401. The real Airflow API server is in test_monitoring_airflow.py."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from orchestration_support import ROOT

sys.path.insert(0, str(ROOT))
from monitoring.evidently.airflow_client import (
    AirflowClient,
    AirflowError,
    HttpClient,
    HttpSettings,
    Unreachable,
)
from monitoring.evidently.errors import MonitorError

FAST = HttpSettings(timeout_seconds=2.0, retries=2, backoff_seconds=0.05)


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Scripted(ThreadingHTTPServer):
    """Answers each path from its script (the last answer repeats); records every request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scripts: dict[str, deque[Answer]] = defaultdict(lambda: deque([Answer()]))
        self.seen: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def script(self, path: str, *answers: Answer) -> None:
        self.scripts[path] = deque(answers)

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [s for s in self.seen if s["path"] == path]


class _Handler(BaseHTTPRequestHandler):
    server: Scripted

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        self.server.seen.append(
            {
                "method": self.command,
                "path": path,
                "query": self.path,
                "headers": dict(self.headers),
                "body": body,
            }
        )
        script = self.server.scripts[path]
        answer = script.popleft() if len(script) > 1 else script[0]
        time.sleep(answer.delay)
        data = json.dumps(answer.body).encode() if answer.body is not None else b""
        try:
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Scripted]:
    srv = Scripted()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_5xx_and_429_are_retried_with_backoff_until_an_answer(server: Scripted) -> None:
    server.script("/x", Answer(503), Answer(429, headers={"Retry-After": "0"}), Answer(200, {"ok": True}))
    waits: list[float] = []
    reply = HttpClient(FAST, sleep=lambda s: waits.append(s) or time.sleep(s)).send("GET", f"{server.url}/x")
    assert (reply.status, reply.json(), reply.attempts) == (200, {"ok": True}, 3)
    assert len(server.calls("/x")) == 3
    # Exponential with jitter after the 503 (base 50 ms: 25..50 ms); Retry-After: 0 after the 429.
    assert 0.025 <= waits[0] <= 0.05 and waits[1] == 0


def test_retries_are_bounded_and_the_last_reply_is_returned(server: Scripted) -> None:
    server.script("/x", Answer(500, {"error": "boom"}))
    reply = HttpClient(FAST).send("GET", f"{server.url}/x")
    assert (reply.status, reply.attempts, reply.json()) == (500, 3, {"error": "boom"})
    assert len(server.calls("/x")) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_a_4xx_is_an_answer_never_retried(server: Scripted, status: int) -> None:
    server.script("/x", Answer(status, {"detail": "no"}), Answer(200))
    reply = HttpClient(FAST).send("POST", f"{server.url}/x", b"{}")
    assert (reply.status, reply.attempts) == (status, 1)
    assert len(server.calls("/x")) == 1


def test_a_timed_out_request_is_retried_within_the_timeout(server: Scripted) -> None:
    server.script("/slow", Answer(200, {"late": True}, delay=1.5), Answer(200, {"late": False}))
    settings = HttpSettings(timeout_seconds=0.5, retries=2, backoff_seconds=0.01)
    started = time.monotonic()
    reply = HttpClient(settings).send("GET", f"{server.url}/slow")
    assert reply.json() == {"late": False} and reply.attempts == 2
    # The first attempt gave up at the timeout, not when the server finally answered.
    assert time.monotonic() - started < 1.4


def test_an_unreachable_server_raises_after_every_attempt() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []
    with pytest.raises(Unreachable, match=rf"cannot reach http://127.0.0.1:{port} after 3 attempt"):
        HttpClient(FAST, sleep=waits.append).send("GET", f"http://127.0.0.1:{port}/x")
    assert len(waits) == 2


def test_a_non_idempotent_call_is_repeated_only_when_the_server_did_not_act(server: Scripted) -> None:
    server.script("/event", Answer(500), Answer(201))
    reply = HttpClient(FAST).send("POST", f"{server.url}/event", b"{}", idempotent=False)
    assert (reply.status, len(server.calls("/event"))) == (500, 1)
    server.script("/event2", Answer(503), Answer(429, headers={"Retry-After": "0"}), Answer(201))
    reply = HttpClient(FAST).send("POST", f"{server.url}/event2", b"{}", idempotent=False)
    assert (reply.status, len(server.calls("/event2"))) == (201, 3)


def test_settings_come_from_the_environment_and_are_checked() -> None:
    env = {"DRIFTWOOD_HTTP_RETRIES": "5", "DRIFTWOOD_HTTP_BACKOFF_MS": "40"}
    assert HttpSettings.from_env(7.0, env) == HttpSettings(
        timeout_seconds=7.0, retries=5, backoff_seconds=0.04
    )
    assert HttpSettings.from_env(env={}).retries == 3
    expected = r"DRIFTWOOD_HTTP_RETRIES: expected an integer 0\.\.20, got 'many'"
    with pytest.raises(MonitorError, match=expected):
        HttpSettings.from_env(env={"DRIFTWOOD_HTTP_RETRIES": "many"})


# --- the Airflow client --------------------------------------------------------------------------


def airflow(server: Scripted) -> AirflowClient:
    return AirflowClient(server.url, "drift-monitor", "s3cret-password", HttpClient(FAST))


def test_the_client_logs_in_once_and_sends_the_token(server: Scripted) -> None:
    server.script("/auth/token", Answer(201, {"access_token": "jwt-1"}))
    server.script("/api/v2/dags/d/dagRuns", Answer(200, {"dag_run_id": "r1", "state": "queued"}))
    client = airflow(server)
    for _ in range(2):
        assert client.trigger_dag_run("d", "r1", {"report_id": "x"}).status == 200
    (login,) = server.calls("/auth/token")
    assert json.loads(login["body"]) == {"username": "drift-monitor", "password": "s3cret-password"}
    runs = server.calls("/api/v2/dags/d/dagRuns")
    assert [r["headers"]["Authorization"] for r in runs] == ["Bearer jwt-1", "Bearer jwt-1"]
    assert json.loads(runs[0]["body"]) == {
        "dag_run_id": "r1",
        "logical_date": None,
        "conf": {"report_id": "x"},
    }


def test_an_expired_token_is_renewed_once_then_401_is_the_answer(server: Scripted) -> None:
    server.script(
        "/auth/token", Answer(201, {"access_token": "jwt-1"}), Answer(201, {"access_token": "jwt-2"})
    )
    server.script(
        "/api/v2/assets", Answer(401), Answer(200, {"assets": [{"id": 7, "uri": "driftwood://d/drift"}]})
    )
    client = airflow(server)
    assert client.asset_id("driftwood://d/drift") == 7
    assert client.logins == 2
    assert [c["headers"]["Authorization"] for c in server.calls("/api/v2/assets")] == [
        "Bearer jwt-1",
        "Bearer jwt-2",
    ]
    # Still refused after a fresh login: no loop, the 401 is returned (here raised as an answer).
    server.script("/api/v2/assets", Answer(401, {"detail": "nope"}))
    with pytest.raises(AirflowError, match="HTTP 401"):
        client.asset_id("driftwood://d/drift")
    assert client.logins == 3


def test_a_refused_login_is_not_retried(server: Scripted) -> None:
    server.script("/auth/token", Answer(401, {"detail": "Invalid credentials"}))
    with pytest.raises(AirflowError, match="auth/token: HTTP 401") as err:
        airflow(server).trigger_dag_run("d", "r1", {})
    assert err.value.status == 401 and len(server.calls("/auth/token")) == 1


def test_an_asset_event_is_not_repeated_after_a_server_error(server: Scripted) -> None:
    server.script("/auth/token", Answer(201, {"access_token": "jwt-1"}))
    server.script("/api/v2/assets/events", Answer(500), Answer(200))
    assert airflow(server).post_asset_event(7, {"report_id": "x"}).status == 500
    assert len(server.calls("/api/v2/assets/events")) == 1
