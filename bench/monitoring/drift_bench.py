"""Drift job benchmark: 100k reference rows x 100k current rows x 30 features (24 numeric, 6
categorical), through the sidecar's real path (prediction log JSON Lines → Evidently → HTML/JSON
reports → decision). Prints time and peak RSS, cold (fresh process) and with a warm reference cache.

  .venvs/evidently/bin/python bench/monitoring/drift_bench.py [--rows 100000] [--max-rows 0] [--mode preset]

Each measurement runs in its own process so peak RSS is that run's own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NUM = [f"n{i:02d}" for i in range(24)]
CAT = [f"c{i}" for i in range(6)]
T0 = datetime(2026, 11, 20, 8, tzinfo=UTC)


def generate(tmp: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    def frame(seed: int, shift: float) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        data = {c: rng.normal(i + shift * (i % 3 == 0), 1 + i / 10, rows) for i, c in enumerate(NUM)}
        for i, c in enumerate(CAT):
            data[c] = rng.choice([f"v{j}" for j in range(3 + i)], rows)
        data["probability"] = rng.beta(2, 5 - 2 * shift, rows)
        return pd.DataFrame(data)

    frame(1, 0.0).to_parquet(tmp / "reference.parquet")
    cur = frame(2, 0.5)
    step = timedelta(hours=1) / rows
    part = tmp / "predictions" / f"dt={T0:%Y-%m-%d}" / f"hr={T0:%H}"
    part.mkdir(parents=True)
    recs = cur.to_dict("records")
    with (part / "predictions.jsonl").open("w") as fh:
        for i, r in enumerate(recs):
            prob = r.pop("probability")
            fh.write(
                json.dumps(
                    {
                        "ts": (T0 + step * i).isoformat(),
                        "model": {"name": "bench", "version": "1", "alias": "champion"},
                        "served": True,
                        "features": r,
                        "probability": prob,
                        "label": int(prob > 0.5),
                    }
                )
                + "\n"
            )


def measure(tmp: Path, max_rows: int, runs: int, mode: str = "preset") -> None:
    """Child process: one or more drift checks of the same window; prints one JSON line per run."""
    t_import = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from monitoring.evidently.config import parse_config
    from monitoring.evidently.monitor import MonitorDeps, run_drift_check

    import_s = time.perf_counter() - t_import
    config = parse_config(
        {
            "dataset": "bench",
            "predictions_dir": str(tmp / "predictions"),
            "lake_dir": str(tmp / "lake"),
            "reference": str(tmp / "reference.parquet"),
            "columns": {"numerical": NUM, "categorical": CAT},
            "max_rows": max_rows,
            "report_mode": mode,
            "decision": {"min_rows": 1000},
        },
        tmp,
    )
    deps = MonitorDeps()
    for i in range(runs):
        t = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        rec = run_drift_check(config, deps, T0 + timedelta(hours=1))
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        print(
            json.dumps(
                {
                    "run": i + 1,
                    "seconds": round(time.perf_counter() - t, 2),
                    # CPU time is what the job costs; wall time also counts waiting for a shared core.
                    "cpu_seconds": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2),
                    "import_seconds": round(import_s, 2),
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                    "rows": rec["rows"],
                    "compared": rec["sampling"]["current_compared"],
                    "reference_compared": rec["sampling"]["reference_compared"],
                    "drift_share": round(rec["drift_share"], 3),
                    "cache_hits": deps.cache.hits,
                    "timings": rec["timings_seconds"],
                }
            ),
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--max-rows", type=int, default=None, help="sampling cap; default: both 0 (off) and 50000")
    p.add_argument("--mode", choices=["preset", "drift_only"], default=None, help="default: both")
    p.add_argument("--child", nargs="+")
    args = p.parse_args()
    if args.child:
        measure(Path(args.child[0]), int(args.child[1]), int(args.child[2]), *args.child[3:])
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t = time.perf_counter()
        generate(tmp, args.rows)
        print(f"load average before: {os.getloadavg()}")
        print(
            f"generated {args.rows} reference + {args.rows} logged rows x {len(NUM) + len(CAT)} features "
            f"in {time.perf_counter() - t:.1f}s"
        )
        caps = [args.max_rows] if args.max_rows is not None else [0, 50_000]
        modes = [args.mode] if args.mode else ["preset", "drift_only"]
        for mode in modes:
            for cap in caps:
                for label, runs in (("cold", 1), ("warm", 2)):
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", str(tmp), str(cap), str(runs), mode],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout.splitlines()
                    last = json.loads(out[-1])
                    print(
                        f"{mode:>10} max_rows={cap or 'off':>6} {label}: {last['seconds']}s wall, "
                        f"{last['cpu_seconds']}s CPU drift job "
                        f"(+{last['import_seconds']}s imports), peak RSS {last['peak_rss_mb']} MB, "
                        f"compared {last['compared']} x {last['reference_compared']}, "
                        f"drift share {last['drift_share']}, reference cache hits {last['cache_hits']}\n"
                        f"    phases: {last['timings']}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
