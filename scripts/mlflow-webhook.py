#!/usr/bin/env python3
"""Registers the prediction API's MLflow registry webhook (docs/api.md, "The MLflow webhook"), so an
alias that moves reaches the API at once instead of at its next registry poll.

    scripts/mlflow-webhook.py --tracking-uri http://127.0.0.1:5000 --name driftwood-api \
        --url http://127.0.0.1:8080/v1/hooks/mlflow --secret-file .driftwood/secrets/mlflow-webhook-secret

Idempotent: a webhook of the same name is replaced (its URL or secret may have changed since), so
every start of the stack leaves exactly one. Standard library only: `make up` runs it with the
machine's python3 and the container stack with the MLflow image's. The MLflow server must allow the
URL (MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https and MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true for a
loopback or private address) and keep webhook secrets under a fixed MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

EVENTS = [{"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}]


class Mlflow:
    """The calls this script makes: a timeout on each, and retries with backoff while the server
    starts or answers 5xx (a 4xx is MLflow's answer and is not repeated)."""

    def __init__(self, base: str, timeout: float = 10, retries: int = 5) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.retries = retries

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(
                f"{self.base}/api/2.0/mlflow/{path}",
                data=data,
                method=method,
                headers={"content-type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as res:
                    raw = res.read()
                    return json.loads(raw) if raw else {}
            except urllib.error.HTTPError as err:
                detail = err.read().decode(errors="replace")[:300]
                if err.code < 500 or attempt == self.retries:
                    raise SystemExit(f"MLflow {method} {path}: HTTP {err.code}: {detail}") from err
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                if attempt == self.retries:
                    raise SystemExit(
                        f"cannot reach MLflow at {self.base} ({err}): check --tracking-uri and that it runs"
                    ) from err
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")


def webhooks(mlflow: Mlflow) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = ""
    while True:
        page = mlflow.call("GET", "webhooks?max_results=100" + (f"&page_token={token}" if token else ""))
        found += page.get("webhooks", [])
        token = page.get("next_page_token", "")
        if not token:
            return found


def register(mlflow: Mlflow, name: str, url: str, secret: str) -> str:
    for old in webhooks(mlflow):
        if old.get("name") == name:
            mlflow.call("DELETE", f"webhooks/{old['webhook_id']}")
    created = mlflow.call("POST", "webhooks", {"name": name, "url": url, "events": EVENTS, "secret": secret})
    return str(created["webhook"]["webhook_id"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--name", default="driftwood-api")
    parser.add_argument("--url", required=True, help="the API's /v1/hooks/mlflow")
    parser.add_argument("--secret-file", required=True, type=Path, help="DRIFTWOOD_API_WEBHOOK_SECRET_FILE")
    args = parser.parse_args(argv)
    try:
        secret = args.secret_file.read_text().strip()
    except OSError as err:
        raise SystemExit(f"--secret-file: cannot read {args.secret_file}: {err.strerror}") from err
    if not secret:
        raise SystemExit(f"--secret-file: {args.secret_file} is empty")
    webhook_id = register(Mlflow(args.tracking_uri), args.name, args.url, secret)
    print(f"MLflow webhook {args.name} ({webhook_id}): alias moves go to {args.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
