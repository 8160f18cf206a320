"""``python -m monitoring.evidently [--config FILE] [--port N] [--once]``: serve the sidecar, or run
one drift check and print its record as JSON (exit 0 ok, 1 on an error)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from .config import load_config
from .errors import MonitorError
from .metrics import MonitorMetrics
from .monitor import MonitorDeps, run_drift_check
from .server import Sidecar


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.evidently")
    parser.add_argument(
        "--config", default=os.environ.get("DRIFTWOOD_MONITOR_CONFIG", "monitoring/evidently/config.yaml")
    )
    parser.add_argument("--host", default=os.environ.get("DRIFTWOOD_SIDECAR_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DRIFTWOOD_SIDECAR_PORT", "8000")))
    parser.add_argument("--once", action="store_true", help="run one drift check and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = load_config(args.config)
    except MonitorError as err:
        print(err, file=sys.stderr)
        return 1
    home = os.environ.get("DRIFTWOOD_HOME")
    deps = MonitorDeps(metrics=MonitorMetrics(Path(home) / "results" if home else None))
    if args.once:
        try:
            print(json.dumps(run_drift_check(config, deps), indent=2, default=str))
        except MonitorError as err:
            print(err, file=sys.stderr)
            return 1
        return 0
    sidecar = Sidecar(config, deps, args.host, args.port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    sidecar.start()
    logging.getLogger("driftwood.monitor").info("sidecar listening on %s:%d", args.host, sidecar.port)
    stopped.wait()
    sidecar.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
