"""The sidecar's HTTP face (standard library only: four routes do not need a framework).

- ``POST /run`` (optional JSON body ``{"end": "<ISO time>", "start": "<ISO time>"}``): one drift
  check now; ``start`` (with ``end``) checks an exact interval, e.g. a replay; 409 while one runs.
- ``GET /reports/latest``: the latest report's HTML; ``GET /reports/latest.json``: its summary.
- ``GET /decisions?limit=N``: the last decisions, newest last.
- ``GET /metrics``: Prometheus text format. ``GET /health``: liveness.
- ``POST /alerts``: Alertmanager's webhook (alerts.py), with ``Authorization: Bearer <token>`` as
  in ``alerts.token_file``; without that setting the route refuses every request.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .alerts import failed, receive_alerts
from .config import MonitorConfig
from .errors import MonitorError
from .monitor import MonitorDeps, latest_report_dir, read_decisions, run_drift_check

log = logging.getLogger("driftwood.monitor")


class Sidecar:
    def __init__(self, config: MonitorConfig, deps: MonitorDeps, host: str, port: int) -> None:
        self.config = config
        self.deps = deps
        self._stop = threading.Event()
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> None:
        t = threading.Thread(target=self.httpd.serve_forever, name="sidecar-http", daemon=True)
        t.start()
        self._threads.append(t)
        if self.config.schedule_seconds > 0:
            s = threading.Thread(target=self._schedule, name="sidecar-schedule", daemon=True)
            s.start()
            self._threads.append(s)

    def _schedule(self) -> None:
        while not self._stop.wait(self.config.schedule_seconds):
            try:
                run_drift_check(self.config, self.deps)
            except Exception:
                log.exception("scheduled drift check failed")

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(sidecar: Sidecar) -> type[BaseHTTPRequestHandler]:
    config = sidecar.config

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("%s " + fmt, self.address_string(), *args)

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value, default=str).encode())

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/health":
                return self._json(200, {"status": "ok"})
            if url.path == "/metrics":
                return self._send(200, generate_latest(sidecar.deps.metrics.registry), CONTENT_TYPE_LATEST)
            if url.path in ("/reports/latest", "/reports/latest.json"):
                latest = latest_report_dir(config)
                if latest is None:
                    return self._json(
                        404, {"error": "NO_REPORT", "message": "no drift report yet; POST /run"}
                    )
                if url.path.endswith(".json"):
                    return self._send(200, (latest / "summary.json").read_bytes())
                return self._send(200, (latest / "report.html").read_bytes(), "text/html; charset=utf-8")
            if url.path == "/decisions":
                limit = int(parse_qs(url.query).get("limit", ["50"])[0])
                return self._json(200, read_decisions(config)[-limit:])
            return self._json(404, {"error": "NOT_FOUND", "message": f"no route {url.path}"})

        def _authorised(self) -> bool:
            """Fails closed: no token configured, or none readable, refuses every request."""
            path = config.alerts.token_file
            if not path:
                self._json(
                    503,
                    {
                        "error": "ALERTS_DISABLED",
                        "message": "set alerts.token_file in the sidecar config, and the same token in "
                        "Alertmanager's webhook http_config.authorization.credentials_file",
                    },
                )
                return False
            try:
                token = Path(path).read_text().strip()
            except OSError as err:
                log.error("alerts.token_file %s: cannot read (%s)", path, err.strerror)
                token = ""
            if len(token) < 16:
                self._json(
                    503,
                    {"error": "ALERTS_DISABLED", "message": "alerts.token_file: needs a 16+ character token"},
                )
                return False
            sent = self.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                self._json(401, {"error": "UNAUTHORIZED", "message": "header Authorization: Bearer <token>"})
                return False
            return True

        def _alerts(self) -> None:
            if not self._authorised():
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length)) if length else None
                records = receive_alerts(config, sidecar.deps, body)
            except ValueError as err:
                return self._json(400, {"error": "BAD_REQUEST", "message": f"body: not JSON ({err})"})
            except MonitorError as err:
                status = {"BAD_REQUEST": 400, "RUN_IN_PROGRESS": 503}.get(err.code, 422)
                return self._json(status, {"error": err.code, "message": str(err.args[0])})
            except Exception:
                log.exception("alert notification failed")
                return self._json(
                    500, {"error": "INTERNAL", "message": "alert handling failed; see the sidecar log"}
                )
            # 502 when a retrain request was not delivered: Alertmanager sends the notification again.
            return self._json(502 if failed(records) else 200, {"decisions": records})

        def do_POST(self) -> None:
            url = urlparse(self.path)
            if url.path == "/alerts":
                return self._alerts()
            if url.path != "/run":
                return self._json(404, {"error": "NOT_FOUND", "message": f"no route {url.path}"})
            length = int(self.headers.get("Content-Length") or 0)
            times: dict[str, datetime | None] = {"end": None, "start": None}
            if length:
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError as err:
                    return self._json(400, {"error": "BAD_REQUEST", "message": f"body: not JSON ({err})"})
                for name in times:
                    try:
                        value = body.get(name) if isinstance(body, dict) else None
                        times[name] = datetime.fromisoformat(value) if value else None
                    except (ValueError, TypeError) as err:
                        return self._json(
                            400,
                            {
                                "error": "BAD_REQUEST",
                                "message": f"field {name}: expected an ISO time ({err})",
                            },
                        )
                    parsed = times[name]
                    if parsed is not None and parsed.tzinfo is None:
                        return self._json(
                            400, {"error": "BAD_REQUEST", "message": f"field {name}: needs a timezone"}
                        )
            try:
                record = run_drift_check(config, sidecar.deps, times["end"], times["start"])
            except MonitorError as err:
                status = {"RUN_IN_PROGRESS": 409, "BAD_REQUEST": 400}.get(err.code, 422)
                return self._json(status, {"error": err.code, "message": str(err.args[0])})
            except Exception:
                log.exception("drift check failed")
                return self._json(
                    500, {"error": "INTERNAL", "message": "drift check failed; see the sidecar log"}
                )
            return self._json(200, record)

    return Handler
