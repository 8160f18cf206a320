"""A Slack incoming-webhook stand-in for machines that cannot reach Slack: every POST body is
appended, one JSON line each, to SLACK_SINK_FILE and answered with Slack's ``ok``; GET returns
the lines received so far. Alertmanager's slack receiver and the ingest alert both post here when
the slack_webhook_url secret names this service."""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SINK = Path(os.environ.get("SLACK_SINK_FILE", "/data/slack.jsonl"))


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {"raw": body.decode(errors="replace")}
        SINK.parent.mkdir(parents=True, exist_ok=True)
        with SINK.open("a") as f:
            f.write(json.dumps({"path": self.path, "payload": payload}) + "\n")
        self._answer(200, b"ok")

    def do_GET(self) -> None:
        self._answer(200, SINK.read_bytes() if SINK.exists() else b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("SLACK_SINK_PORT", "8080"))), Handler).serve_forever()
