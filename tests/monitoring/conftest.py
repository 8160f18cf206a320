"""Shared helpers for the monitoring tests (run with .venvs/evidently: see scripts/test.sh).

The prediction-log writer follows serving/src/predictions/log.ts, one JSON object per line under
``dt=YYYY-MM-DD/hr=HH/predictions.jsonl``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NUMERICAL = ("tenure_days", "monthly_charges", "sessions_30d", "tickets_30d")
CATEGORICAL = ("plan", "region")


def feature_rows(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Churn-like raw rows; ``shift`` moves the numeric features and the plan mix (drift)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure_days": rng.gamma(2.0, 200.0, n) * (1 + shift),
            "monthly_charges": rng.normal(50 + 40 * shift, 12, n),
            "sessions_30d": rng.poisson(20 * (1 + shift), n).astype(float),
            "tickets_30d": rng.poisson(1 + 3 * shift, n).astype(float),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5 - 0.3 * shift, 0.3, 0.2 + 0.3 * shift]),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "probability": np.clip(rng.beta(2, 5, n) + 0.3 * shift, 0, 1),
        }
    )


def write_predictions(
    root: Path, frame: pd.DataFrame, start: datetime, minutes: int, model: tuple[str, str] = ("churn", "3")
) -> None:
    """Spreads the rows evenly over ``minutes`` from ``start`` in the log's partition layout."""
    step = timedelta(minutes=minutes) / max(len(frame), 1)
    by_part: dict[Path, list[str]] = {}
    for i, row in enumerate(frame.to_dict("records")):
        ts = start + step * i
        prob = float(row.pop("probability"))
        rec = {
            "ts": ts.isoformat().replace("+00:00", "Z"),
            "request_id": f"r{i}",
            "model": {"name": model[0], "version": model[1], "alias": "champion"},
            "served": True,
            "customer_token": None,
            "features": row,
            "probability": prob,
            "label": int(prob >= 0.5),
        }
        part = root / f"dt={ts:%Y-%m-%d}" / f"hr={ts:%H}" / "predictions.jsonl"
        by_part.setdefault(part, []).append(json.dumps(rec))
    for part, lines in by_part.items():
        part.parent.mkdir(parents=True, exist_ok=True)
        with part.open("a") as fh:
            fh.write("\n".join(lines) + "\n")


class Receiver:
    """A real local HTTP server that records what it receives; with a secret it checks the
    Driftwood webhook signature and answers 401 when it does not match."""

    def __init__(self, port: int, secret: bytes | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.rejected = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if secret is not None:
                    ts = self.headers.get("X-Driftwood-Timestamp", "")
                    want = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                    if not hmac.compare_digest(want, self.headers.get("X-Driftwood-Signature", "")):
                        outer.rejected += 1
                        self.send_response(401)
                        self.end_headers()
                        return
                outer.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    made: list[Receiver] = []

    def make(port: int, secret: bytes | None = None) -> Receiver:
        r = Receiver(port, secret)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()
