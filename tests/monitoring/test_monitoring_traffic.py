"""The traffic the monitor is tested with: ``driftwood simulate --drift`` (deterministic, unchanged
before the drift starts, then the changes it names) and ``driftwood replay`` (stored rows through an
HTTP API with Basic auth, in batches; a rejected row stops it with the API's message). The CLI is the
built one (``npx tsc -b tasks serving``); a local HTTP server records what the replay sends."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

DRIFT_START = "2026-11-03T00:00Z"
API_PORT = 7655


def cli(args: list[str], home: Path, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DRIFTWOOD_HOME": str(home),
        "DRIFTWOOD_PII_KEY": "traffic-key-0123456789",
        **(extra or {}),
    }
    env.pop("DRIFTWOOD_LAKE_URI", None)
    return subprocess.run(
        ["node", str(ROOT / "tasks" / "dist" / "cli.js"), *args], env=env, capture_output=True, text=True
    )


def simulate(home: Path, *drift: str) -> dict[str, Any]:
    args = ["simulate", "--start", "2026-11-01T00:00Z", "--hours", "96", "--seed", "5", "--customers", "300"]
    done = cli([*args, *drift], home)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.splitlines()[-1]))


def files(home: Path) -> dict[str, bytes]:
    raw = home / "lake" / "raw" / "churn"
    return {str(p.relative_to(raw)): p.read_bytes() for p in sorted(raw.rglob("*.csv"))}


def rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def sessions(lake: dict[str, bytes], day: str) -> int:
    return sum(
        1
        for key, body in lake.items()
        if key.startswith(f"dt={day}/") and key.endswith("events.csv")
        for r in rows(body)
        if r["event_type"] == "session"
    )


def test_simulated_drift_changes_the_world_from_its_start_hour_only(tmp_path: Path) -> None:
    calm = files_of(tmp_path / "calm")
    drift_args = ("--drift", "price:0.3,plan:0.5,activity:0.6", "--drift-start", DRIFT_START)
    simulate(tmp_path / "drift", *drift_args)
    drifted = files(tmp_path / "drift")
    before = [k for k in calm if k < "dt=2026-11-03/"]
    assert before and all(drifted[k] == calm[k] for k in before)

    # At the start hour every active customer is re-sent: prices up 30%, half the basic plans gone.
    start_hour = "dt=2026-11-03/hr=00/customers.csv"
    resent = {r["customer_id"]: r for r in rows(drifted[start_hour])}
    first = {r["customer_id"]: r for r in rows(calm["dt=2026-11-01/hr=00/customers.csv"])}
    assert len(resent) > 250
    was_basic = [c for c in resent if first.get(c, {}).get("plan") == "basic"]
    moved = sum(1 for c in was_basic if resent[c]["plan"] == "premium")
    assert 0.35 < moved / len(was_basic) < 0.65
    kept = [c for c in resent if c in first and resent[c]["plan"] == first[c]["plan"]]
    ratios = [float(resent[c]["monthly_charges"]) / float(first[c]["monthly_charges"]) for c in kept]
    assert all(abs(r - 1.3) < 0.01 for r in ratios)
    # Activity falls by 60% after the start (the calm world keeps its pace).
    assert sessions(drifted, "2026-11-03") < 0.6 * sessions(calm, "2026-11-03")

    # Deterministic: the same options leave every file as it was.
    again = simulate(tmp_path / "drift", *drift_args)
    assert again["unchanged"] == again["files"] == len(drifted)


def files_of(home: Path) -> dict[str, bytes]:
    simulate(home)
    return files(home)


@pytest.mark.parametrize(
    ("drift", "message"),
    [
        ("price", "'price' is not <kind>:<strength>"),
        ("weather:0.2", "'weather:0.2' is not <kind>:<strength>"),
        ("price:1.5", "strength of 'price' must be in (0, 1]"),
        ("price:0.2,price:0.3", "'price' is given twice"),
    ],
)
def test_a_bad_drift_option_names_the_part(tmp_path: Path, drift: str, message: str) -> None:
    args = [
        "simulate",
        "--start",
        "2026-11-01T00:00Z",
        "--hours",
        "2",
        "--drift",
        drift,
        "--drift-start",
        DRIFT_START,
    ]
    done = cli(args, tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    missing = cli(
        ["simulate", "--start", "2026-11-01T00:00Z", "--hours", "2", "--drift", "price:0.2"], tmp_path
    )
    assert missing.returncode == 2 and "--drift-start is required" in missing.stderr


class FakeApi:
    """A real HTTP server answering like POST /v1/predict/batch; rejects a row whose tenure is -1."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                outer.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                batch = body["rows"] if "rows" in body else [body]
                bad = [i for i, r in enumerate(batch) if r.get("tenure_days") == -1]
                if not self.headers.get("Authorization"):
                    reply, status = {"error": "unauthorized", "message": "missing credentials"}, 401
                elif bad:
                    reply = {
                        "error": "bad_request",
                        "message": f"body.rows.{bad[0]}.tenure_days must be >= 0",
                    }
                    status = 400
                else:
                    preds = [
                        {"probability": 0.2, "label": 0, "model": {"name": "churn", "version": "7"}}
                        for _ in batch
                    ]
                    reply = {"count": len(preds), "predictions": preds} if "rows" in body else preds[0]
                    status = 200
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", API_PORT), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_replay_sends_stored_rows_in_batches_with_basic_auth(tmp_path: Path, api: FakeApi) -> None:
    lake = tmp_path / "lake" / "traffic"
    lake.mkdir(parents=True)
    stored = [{"customer_id": f"C{i:04d}", "tenure_days": i, "plan": "basic", "label": 1} for i in range(120)]
    (lake / "day.jsonl").write_text("\n".join(json.dumps(r) for r in stored) + "\n")
    args = ["replay", "--from", "traffic/day.jsonl", "--api", f"http://127.0.0.1:{API_PORT}", "--batch", "50"]
    done = cli([*args, "--rate", "0"], tmp_path, {"DRIFTWOOD_REPLAY_AUTH": "replay:pass:with-colon"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert (result["rows"], result["predicted"], result["requests"]) == (120, 120, 3)
    assert result["versions"] == {"7": 120}
    assert [len(r["body"]["rows"]) for r in api.requests] == [50, 50, 20]
    assert {r["path"] for r in api.requests} == {"/v1/predict/batch"}
    assert {r["auth"] for r in api.requests} == {
        "Basic " + base64.b64encode(b"replay:pass:with-colon").decode()
    }
    # The customer id travels (the API tokenises it for the log); the stored label does not.
    sent = [row for r in api.requests for row in r["body"]["rows"]]
    assert sent[0] == {"customer_id": "C0000", "tenure_days": 0, "plan": "basic"}

    # A row the API rejects stops the replay with the API's message and the rows it was in.
    (lake / "bad.jsonl").write_text(
        "\n".join(json.dumps({**r, "tenure_days": -1 if i == 3 else i}) for i, r in enumerate(stored[:5]))
        + "\n"
    )
    auth = {"DRIFTWOOD_REPLAY_AUTH": "replay:pass"}
    bad = cli(
        ["replay", "--from", "traffic/bad.jsonl", "--api", f"http://127.0.0.1:{API_PORT}", "--batch", "1"],
        tmp_path,
        auth,
    )
    assert bad.returncode == 2, bad.stderr
    assert (
        "answered 400 for rows 4-4 of traffic/bad.jsonl" in bad.stderr
        and "tenure_days must be >= 0" in bad.stderr
    )
    missing = cli(
        ["replay", "--from", "traffic/none.jsonl", "--api", f"http://127.0.0.1:{API_PORT}"], tmp_path, auth
    )
    assert missing.returncode != 0 and "no object 'traffic/none.jsonl' in the lake" in missing.stderr

    # Without credentials the API's 401 becomes a configuration error saying what to set.
    anonymous = cli(
        ["replay", "--from", "traffic/day.jsonl", "--api", f"http://127.0.0.1:{API_PORT}"], tmp_path
    )
    assert anonymous.returncode == 2 and "set DRIFTWOOD_REPLAY_AUTH" in anonymous.stderr
