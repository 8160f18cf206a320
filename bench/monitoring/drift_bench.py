"""Drift job benchmark at two traffic sizes: N reference rows x N logged predictions x 30 features
(24 numeric, 6 categorical), through the sidecar's real path (prediction log JSON Lines → column
summaries of every row → decision; Evidently's HTML/JSON report on a sample of ``max_rows``).

  .venvs/evidently/bin/python bench/monitoring/drift_bench.py [--rows 100000 1000000] [--full-up-to 100000]

For each size it prints, each measured in a fresh process (so peak RSS is that run's own): the
sidecar's check in both report modes, and — up to ``--full-up-to`` rows — Evidently's full
computation on every row (its own test choice, the sidecar's way before the column summaries),
with whether the decisions (each feature drifted or not, the window's drift) are the same.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NUM = [f"n{i:02d}" for i in range(24)]
CAT = [f"c{i}" for i in range(6)]
T0 = datetime(2026, 11, 20, 8, tzinfo=UTC)
WINDOW_END = T0 + timedelta(hours=1)


def generate(tmp: Path, rows: int) -> None:
    """A reference (Parquet) and one hour of logged predictions; a third of the numeric features,
    and the score, are shifted in the log."""
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
    part = tmp / "predictions" / f"dt={T0:%Y-%m-%d}" / f"hr={T0:%H}"
    part.mkdir(parents=True)
    # The features object of each line from pandas' JSON writer (15 significant digits), the rest
    # around it: the same lines as the API's, written in seconds rather than minutes.
    features = cur[[*NUM, *CAT]].to_json(orient="records", lines=True, double_precision=15).splitlines()
    step_us = 3_600_000_000 // rows
    model = '{"name":"bench","version":"1","alias":"champion"}'
    with (part / "predictions.jsonl").open("w") as fh:
        for i, (feats, prob) in enumerate(zip(features, cur["probability"].tolist(), strict=True)):
            ts = (T0 + timedelta(microseconds=step_us * i)).isoformat()
            fh.write(
                f'{{"ts":"{ts}","model":{model},"served":true,"features":{feats},'
                f'"probability":{prob!r},"label":{int(prob > 0.5)}}}\n'
            )


def _peak_rss_mb() -> int:
    """This process's own high-water mark (VmHWM). Not ru_maxrss: Linux carries the spawning
    parent's peak across a vfork+exec into it, so a child would report the generator's memory."""
    status = Path("/proc/self/status").read_text()
    kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return round(int(kb) / 1024)


def _usage(t: float, cpu0: Any) -> dict[str, Any]:
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": round(time.perf_counter() - t, 2),
        # CPU time is what the job costs; wall time also counts waiting for a shared core.
        "cpu_seconds": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2),
        "peak_rss_mb": _peak_rss_mb(),
    }


def check(tmp: Path, mode: str) -> dict[str, Any]:
    """Child: the sidecar's drift check of the window, as it runs in production (cold process)."""
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
            "report_mode": mode,
            "decision": {"min_rows": 1000},
        },
        tmp,
    )
    t, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    rec = run_drift_check(config, MonitorDeps(), WINDOW_END)
    return {
        **_usage(t, cpu0),
        "import_seconds": round(import_s, 2),
        "rows": rec["rows"],
        "report_rows": rec["sampling"]["report_current_rows"],
        "timings": rec["timings_seconds"],
        "features": {f["column"]: [f["method"], f["score"], f["drifted"]] for f in rec["features"]},
        "dataset_drift": rec["dataset_drift"],
    }


def full(tmp: Path) -> dict[str, Any]:
    """Child: Evidently on every row of both sides, choosing each column's test itself."""
    t_import = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from monitoring.evidently.drift import run_report
    from monitoring.evidently.prediction_log import Window, read_window
    from monitoring.evidently.reference import load_reference, prepare

    import_s = time.perf_counter() - t_import
    t, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    num, cat = tuple(NUM), tuple(CAT)
    log = read_window(tmp / "predictions", Window(T0, WINDOW_END), (*num, *cat), "probability")
    cur = prepare(log.frame, num, cat)
    cur["probability"] = log.frame["probability"].astype("float64")
    raw = load_reference(str(tmp / "reference.parquet"))
    ref = prepare(raw, num, cat)
    ref["probability"] = raw["probability"].astype("float64")
    _, summary = run_report(cur, ref, num, cat, "probability", 0.5, {}, mode="drift_only")
    return {
        **_usage(t, cpu0),
        "import_seconds": round(import_s, 2),
        "rows": len(cur),
        "features": {f.column: [f.method, f.score, f.drifted] for f in summary.features},
        "dataset_drift": summary.dataset_drift,
    }


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return json.loads(out[-1])


def _agreement(got: dict[str, Any], want: dict[str, Any]) -> str:
    same = got["dataset_drift"] == want["dataset_drift"] and all(
        got["features"][c][0] == want["features"][c][0] and got["features"][c][2] == want["features"][c][2]
        for c in want["features"]
    )
    worst = max(
        abs(got["features"][c][1] - want["features"][c][1]) / max(abs(want["features"][c][1]), 1e-12)
        for c in want["features"]
    )
    return f"{'yes' if same else 'NO'} (largest relative score difference {worst:.1e})"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--full-up-to", type=int, default=100_000, help="run the full computation up to this size")
    p.add_argument("--child", nargs="+")
    args = p.parse_args()
    if args.child:
        kind, tmp = args.child[0], Path(args.child[1])
        if kind == "generate":
            generate(tmp, int(args.child[2]))
            print("{}")
        else:
            print(json.dumps(check(tmp, args.child[2]) if kind == "check" else full(tmp)), flush=True)
        return
    table = []
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            t = time.perf_counter()
            _child(["generate", d, str(rows)])  # in its own process: the parent stays small
            print(f"{rows} x {rows} rows x 30 features: {time.perf_counter() - t:.1f}s to generate")
            want = _child(["full", d]) if rows <= args.full_up_to else None
            if want:
                table.append((rows, "full Evidently, every row", want, "(itself)"))
            for mode in ("preset", "drift_only"):
                print(f"load average before {mode}: {os.getloadavg()}", flush=True)
                got = _child(["check", d, mode])
                verdict = _agreement(got, want) if want else "not run at this size"
                table.append((rows, f"sidecar {mode}", got, verdict))
                print(f"  {mode}: phases {got['timings']}", flush=True)
    print(
        "\n| rows (reference x window) | job | wall (s) | CPU (s) | imports (s) | peak RSS (MB) "
        "| drifted / 30 | same decisions as full |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for rows, job, r, verdict in table:
        drifted = sum(1 for f in r["features"].values() if f[2])
        print(
            f"| {rows:,} x {rows:,} | {job} | {r['seconds']} | {r['cpu_seconds']} | {r['import_seconds']} "
            f"| {r['peak_rss_mb']} | {drifted} | {verdict} |"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
