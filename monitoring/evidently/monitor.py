"""One drift check, start to end: read the window, compare it with the reference, keep the report,
decide, maybe request a retrain, and record the decision. ``run_drift_check`` is the step; the
HTTP server and the scheduler only call it."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .champion import ChampionReference, resolve_champion, verify_snapshot
from .config import MonitorConfig
from .decision import Decision, LastTrigger, WindowOutcome, decide_retrain
from .drift import DriftSummary, run_report
from .errors import MonitorError
from .exact_drift import exact_drift, test_for
from .metrics import MonitorMetrics
from .prediction_log import LogWindow, Window, read_window, window_ending
from .quality import TARGET, complete_until, join_labels, read_labels, run_quality
from .reference import PreparedReference, ReferenceCache
from .webhook import Delivery, deliver
from .window_scan import scan_window

log = logging.getLogger("driftwood.monitor")


@dataclass
class MonitorDeps:
    metrics: MonitorMetrics = field(default_factory=MonitorMetrics)
    cache: ReferenceCache = field(default_factory=ReferenceCache)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    send: Callable[..., Delivery] = deliver
    lock: threading.Lock = field(default_factory=threading.Lock)
    resolve: Callable[..., ChampionReference] = resolve_champion


def report_id(dataset: str, window: Window) -> str:
    return f"{dataset}-{window.end:%Y%m%dT%H%M%SZ}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_decisions(config: MonitorConfig) -> list[dict[str, Any]]:
    """The decision log; a torn last line (crash mid-write) is skipped, not fatal."""
    try:
        lines = config.decisions_file.read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _history(records: list[dict[str, Any]]) -> tuple[list[WindowOutcome], LastTrigger | None]:
    outcomes = []
    last: LastTrigger | None = None
    for r in records:
        if r.get("source") == "alert":
            # A retrain an alert started (alerts.py) starts the same cooldown, and the windows that
            # ended before it are spent evidence, as after a trigger of the sidecar's own.
            if r.get("action") == "trigger" and r.get("delivered"):
                at = datetime.fromisoformat(r["decided_at"])
                if last is None or at > last.at:
                    last = LastTrigger(at, at)
            continue
        if "window_end" not in r or "rows" not in r:
            continue
        end = datetime.fromisoformat(r["window_end"])
        outcomes.append(
            WindowOutcome(end, int(r["rows"]), bool(r.get("dataset_drift")), str(r.get("report_id")))
        )
        if r.get("action") == "trigger" and r.get("delivered"):
            at = datetime.fromisoformat(r["decided_at"])
            if last is None or at > last.at:
                last = LastTrigger(at, end)
    return outcomes, last


def last_trigger(config: MonitorConfig) -> LastTrigger | None:
    """The last delivered retrain request of any source, from the decision log."""
    return _history(read_decisions(config))[1]


def append_decision(config: MonitorConfig, record: dict[str, Any]) -> None:
    config.decisions_file.parent.mkdir(parents=True, exist_ok=True)
    with config.decisions_file.open("a") as fh:
        fh.write(json.dumps(record, default=str) + "\n")


def latest_report_dir(config: MonitorConfig) -> Path | None:
    try:
        rid = (config.reports_dir / "LATEST").read_text().strip()
    except FileNotFoundError:
        return None
    path = config.reports_dir / rid
    return path if path.is_dir() else None


def run_drift_check(
    config: MonitorConfig, deps: MonitorDeps, end: datetime | None = None, start: datetime | None = None
) -> dict[str, Any]:
    """Runs one check for the window ending at ``end`` (default: the last complete window), of
    ``window_minutes`` or from ``start`` (a replay or backfill of an exact interval). Reruns of the
    same window overwrite its report and replace its place in the k-of-n history."""
    if start is not None and (end is None or start >= end):
        raise MonitorError("BAD_REQUEST", "field start: needs an end after it")
    if not deps.lock.acquire(blocking=False):
        raise MonitorError("RUN_IN_PROGRESS", "a drift run is already in progress; try again when it ends")
    try:
        return _run(config, deps, end, start)
    except Exception:
        deps.metrics.runs.labels(dataset=config.dataset, outcome="error").inc()
        raise
    finally:
        deps.lock.release()


def _reference(
    config: MonitorConfig, deps: MonitorDeps, served: tuple[str, str]
) -> tuple[PreparedReference, dict[str, Any]]:
    """The reference for a window: with ``champion`` set, the training snapshot of the version that
    served the window (or of the alias's version when the log does not say); else the file."""
    args = (config.prediction_column, config.numerical, config.categorical, config.max_rows)
    if config.champion is None:
        ref = deps.cache.get(config.reference, *args)
        return ref, {
            "uri": config.reference,
            "hash": ref.hash,
            "rows": ref.rows_total,
            "sampled": ref.sampled,
        }
    name, version = served
    champion = deps.resolve(
        config.champion,
        config.lake_dir,
        config.dataset,
        version if name == config.champion.model_name and version != "unknown" else None,
    )
    ref = deps.cache.get(
        champion.uri, *args, key=champion.snapshot_id, on_miss=lambda: verify_snapshot(champion)
    )
    return ref, {
        "uri": champion.uri,
        "hash": ref.hash,
        "rows": ref.rows_total,
        "sampled": ref.sampled,
        "source": "mlflow",
        "snapshot_id": champion.snapshot_id,
        "model_version": champion.version,
        "run_id": champion.run_id,
    }


def _allowed_methods(
    summary: DriftSummary, numerical: tuple[str, ...], categorical: tuple[str, ...]
) -> dict[str, str]:
    """The decision's test per column, to pin in the HTML report. Evidently picks some tests by
    default that it refuses when named (Z on a numeric column): those keep the automatic choice."""
    kinds = {c: "num" for c in numerical} | {c: "cat" for c in categorical}
    out = {}
    for f in summary.features:
        test = test_for(f.method)
        if test is not None and any(t.value == kinds[f.column] for t in test.allowed_feature_types):
            out[f.column] = test.name
    return out


def _run(
    config: MonitorConfig, deps: MonitorDeps, end: datetime | None, start: datetime | None
) -> dict[str, Any]:
    t0 = time.perf_counter()
    now = deps.clock()
    size = timedelta(minutes=config.window_minutes)
    if end is None:
        window = window_ending(now, config.window_minutes)
    else:
        window = Window(start if start is not None else end - size, end)
    rid = report_id(config.dataset, window)
    timings: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now_ = time.perf_counter()
        timings[name] = round(now_ - mark, 3)
        mark = now_

    # One streaming pass: every row's column summaries (the decision), a sample (the HTML report),
    # and the scores, tokens and times for the label join when quality is scored.
    scan = scan_window(
        config.predictions_dir,
        window,
        config.numerical,
        config.categorical,
        config.prediction_column,
        config.served_only,
        sample_rows=config.max_rows,
        seed=int(window.end.timestamp()),
        keep_labels=config.labels is not None,
    )
    cur = scan.log_window()
    lap("read_log")
    ref, reference_record = _reference(config, deps, (cur.model_name, cur.model_version))
    lap("reference")
    rows = scan.rows
    labels = {
        "dataset": config.dataset,
        "model_name": cur.model_name,
        "model_version": cur.model_version,
        "reference_hash": ref.hash,
    }
    record: dict[str, Any] = {
        "report_id": rid,
        "dataset": config.dataset,
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "rows": rows,
        "skipped_lines": cur.skipped_lines,
        "model": {"name": cur.model_name, "version": cur.model_version},
        "reference": reference_record,
        "dataset_drift": False,
    }
    summary = None
    if rows >= config.policy.min_rows:
        pred_col = config.prediction_column if config.prediction_column in ref.summaries else None
        # A feature with no value in the whole window (callers that never send an optional field)
        # cannot be compared, and Evidently refuses an empty column: it is left out and named.
        empty = [c for c in config.features if scan.summaries[c].total == 0]
        record["columns_without_values"] = empty
        numerical = tuple(c for c in config.numerical if c not in empty)
        categorical = tuple(c for c in config.categorical if c not in empty)
        # The decision: each feature's test on every row of both sides, from the summaries.
        summary = exact_drift(
            ref.summaries, scan.summaries, numerical, categorical, pred_col, config.drift_share
        )
        lap("drift_statistics")
        sampling = {
            "current_rows": str(rows),
            "current_compared": str(rows),
            "reference_rows": str(ref.rows_total),
            "reference_compared": str(ref.rows_total),
            "report_current_rows": str(len(scan.sample)),
            "report_reference_rows": str(len(ref.frame)),
            "max_rows": str(config.max_rows),
            "report_mode": config.report_mode,
            "decided_on": "every row (exact statistics)",
        }
        # The HTML report: Evidently on the sample (every row up to max_rows), each column with the
        # test the decision used; its scores are the sample's, the decision's are in summary.json.
        snapshot, _ = run_report(
            scan.sample,
            ref.frame,
            numerical,
            categorical,
            pred_col,
            config.drift_share,
            mode=config.report_mode,
            methods=_allowed_methods(summary, numerical, categorical),
            metadata={
                "report_id": rid,
                "reference_hash": ref.hash,
                **labels,
                **{f"sampling_{k}": v for k, v in sampling.items()},
            },
        )
        lap("evidently_run")
        out = config.reports_dir / rid
        out.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(out / "report.html"))
        lap("save_html")
        snapshot.save_json(str(out / "snapshot.json"))
        lap("save_json")
        record.update(
            dataset_drift=summary.dataset_drift,
            drift_share=summary.drift_share,
            drifted_columns=summary.drifted_columns,
            features=[asdict(f) for f in summary.features],
            prediction=asdict(summary.prediction) if summary.prediction else None,
            prediction_drift_skipped=None
            if pred_col
            else f"reference has no {config.prediction_column!r} column",
            sampling={"current_sampled": scan.sampled, "reference_sampled": ref.sampled, **sampling},
            report_dir=str(out),
        )
        _write_atomic(out / "summary.json", json.dumps(record, indent=2))
        _write_atomic(config.reports_dir / "LATEST", rid)
        deps.metrics.publish(labels, summary, rows, ref.rows_total)

    if config.labels is not None:
        try:
            record["quality"] = _quality(config, deps, window, cur)
        except MonitorError as err:
            # Quality is a second opinion: a missing warehouse or key is recorded, drift still decides.
            log.warning("quality of %s not scored: %s", rid, err)
            record["quality"] = {"status": "error", "reason": str(err)}
        lap("quality")

    outcome = WindowOutcome(window.end, rows, bool(record["dataset_drift"]), rid)
    history, last_trigger = _history(read_decisions(config))
    decision: Decision = decide_retrain(outcome, history, last_trigger, now, config.policy)
    record.update(decision=decision.to_dict(), action=decision.action, decided_at=now.isoformat())
    record["delivered"] = False
    if decision.action == "trigger":
        payload = {
            "event": "drift_detected",
            "dataset": config.dataset,
            "report_id": rid,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "model": record["model"],
            "reference_hash": ref.hash,
            "drift_share": record.get("drift_share"),
            "reason": decision.reason,
        }
        delivery = deps.send(config.webhook, payload, str(int(now.timestamp())))
        record["delivered"] = delivery.ok
        record["delivery"] = asdict(delivery)
        deps.metrics.triggers.labels(dataset=config.dataset, outcome="ok" if delivery.ok else "failed").inc()
    # A window too small to judge leaves the declared state as it was: no evidence either way.
    if decision.action != "insufficient_rows":
        deps.metrics.detected.labels(dataset=config.dataset).set(1 if decision.drift_declared else 0)
    deps.metrics.decisions.labels(dataset=config.dataset, action=decision.action).inc()
    deps.metrics.runs.labels(dataset=config.dataset, outcome="ok" if summary else "insufficient_rows").inc()
    lap("decide_and_deliver")
    elapsed = time.perf_counter() - t0
    record["duration_seconds"] = round(elapsed, 3)
    record["timings_seconds"] = timings
    deps.metrics.duration.labels(dataset=config.dataset).set(elapsed)
    deps.metrics.last_run.labels(dataset=config.dataset).set(time.time())

    # Every decision is kept, drift or not, triggered or suppressed, with its reason.
    append_decision(config, {k: v for k, v in record.items() if k not in ("features",)})
    log.info(
        "drift check %s: rows=%d drift=%s action=%s (%s)",
        rid,
        rows,
        record["dataset_drift"],
        decision.action,
        decision.reason,
    )
    return record


def _quality(config: MonitorConfig, deps: MonitorDeps, window: Window, cur: LogWindow) -> dict[str, Any]:
    """Scores the newest window whose labels are all in: this one when it is old enough (a
    backfill), else the last aligned window that ends before the label feed's horizon."""
    assert config.labels is not None
    labels = read_labels(config.labels)
    until = complete_until(labels, config.labels)
    if until is None:
        return {"status": "pending", "reason": "no labels in the warehouse yet"}
    if window.end <= until:
        qwin, logged = window, cur
    else:
        qwin = window_ending(until, config.window_minutes)
        logged = read_window(
            config.predictions_dir, qwin, config.features, config.prediction_column, config.served_only
        )
    rid = report_id(config.dataset, qwin)
    base = {"window_start": qwin.start.isoformat(), "window_end": qwin.end.isoformat(), "report_id": rid}
    frame = logged.frame[logged.frame[config.prediction_column].notna()]
    labelled = join_labels(frame, labels, config.labels.horizon_hours)
    positives = int(labelled[TARGET].sum()) if len(labelled) else 0
    base.update(rows=len(labelled), positives=positives, labels_until=until.isoformat())
    if len(labelled) < config.labels.min_rows:
        reason = f"{len(labelled)} labelled predictions, fewer than labels.min_rows={config.labels.min_rows}"
        return {"status": "skipped", **base, "reason": reason}
    if positives in (0, len(labelled)):
        return {"status": "skipped", **base, "reason": "every labelled prediction has the same label"}
    snapshot, values = run_quality(
        labelled,
        config.prediction_column,
        {
            "report_id": rid,
            "dataset": config.dataset,
            "model_name": logged.model_name,
            "model_version": logged.model_version,
        },
    )
    out = config.reports_dir / rid
    out.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out / "quality.html"))
    snapshot.save_json(str(out / "quality.json"))
    gauge_labels = {
        "dataset": config.dataset,
        "model_name": logged.model_name,
        "model_version": logged.model_version,
    }
    deps.metrics.publish_quality(gauge_labels, values, len(labelled), qwin.end.timestamp())
    return {
        "status": "scored",
        **base,
        "model": {"name": logged.model_name, "version": logged.model_version},
        "metrics": values,
        "report_dir": str(out),
    }
