"""Reads a time window of the API's prediction log.

The log is JSON Lines under ``<predictions_dir>/dt=YYYY-MM-DD/hr=HH/predictions.jsonl`` (written by
serving/src/predictions/log.ts). Fields this reader relies on, per line:

- ``ts``: ISO-8601 time of the prediction (required; lines without a parsable one are skipped);
- ``features``: object with the raw feature fields (a missing field becomes null);
- ``probability``: the model's score (the prediction-drift column);
- ``model.name`` / ``model.version``: which model answered (labels of the gauges);
- ``served``: false for shadow predictions, left out unless ``served_only: false``.

- ``customer_token``: the tokenised customer id, kept (with ``ts`` in ms) to join delayed labels.

Anything else (``request_id``, ``label``, ``alias``) is ignored. Bad lines are
counted and skipped, never fatal: one torn write must not stop monitoring.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json

# Columns the reader adds beside the features and the score.
TOKEN, TS_MS = "customer_token", "ts_ms"


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


@dataclass
class LogWindow:
    frame: pd.DataFrame
    model_name: str
    model_version: str
    skipped_lines: int
    files_read: int


def window_ending(now: datetime, minutes: int) -> Window:
    """The last complete window before ``now``, aligned to the window size (UTC)."""
    size = timedelta(minutes=minutes)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    end = epoch + ((now - epoch) // size) * size
    return Window(end - size, end)


def partitions(window: Window) -> list[str]:
    """``dt=…/hr=…`` folders that can hold lines of the window."""
    hour = window.start.replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < window.end:
        out.append(f"dt={hour:%Y-%m-%d}/hr={hour:%H}")
        hour += timedelta(hours=1)
    return out


def _parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _read_file_fast(
    path: Path, window: Window, features: tuple[str, ...], prediction_column: str, served_only: bool
) -> tuple[pd.DataFrame, Counter[tuple[str, str]], int]:
    """Arrow's multi-threaded JSON reader: about ten times faster than a Python loop on 100k lines.
    It refuses a file with a torn line or a field of two types; the caller then reads it line by line."""
    table = pa_json.read_json(path, read_options=pa_json.ReadOptions(block_size=1 << 24))
    return _frame_of_table(table, window, features, prediction_column, served_only)


def _frame_of_table(
    table: pa.Table, window: Window, features: tuple[str, ...], prediction_column: str, served_only: bool
) -> tuple[pd.DataFrame, Counter[tuple[str, str]], int]:
    """The window's rows of a table of log lines (a whole file, or a chunk of one)."""
    names = set(table.column_names)

    def column(name: str) -> pd.Series:
        return table.column(name).to_pandas() if name in names else pd.Series([None] * table.num_rows)

    raw_ts = column("ts")
    # Arrow turns whole-second ISO times into timestamps itself (of any unit); others stay text.
    if pd.api.types.is_datetime64_any_dtype(raw_ts):
        ts = raw_ts if raw_ts.dt.tz is not None else raw_ts.dt.tz_localize("UTC")
    else:
        ts = pd.to_datetime(raw_ts, utc=True, format="ISO8601", errors="coerce")
    ts = ts.dt.tz_convert("UTC").dt.as_unit("ms")
    skipped = int(ts.isna().sum())
    keep = ts.notna() & (ts >= pd.Timestamp(window.start)) & (ts < pd.Timestamp(window.end))
    if served_only and "served" in names:
        keep &= column("served").ne(False)
    idx = keep.to_numpy().nonzero()[0]
    out = pd.DataFrame(index=range(len(idx)))
    struct = table.column("features").combine_chunks() if "features" in names else None
    fields = (
        {struct.type.field(i).name for i in range(struct.type.num_fields)} if struct is not None else set()
    )
    for name in features:
        out[name] = struct.field(name).to_pandas().iloc[idx].to_numpy() if name in fields else None
    prob = column("probability")
    out[prediction_column] = pd.to_numeric(prob.iloc[idx], errors="coerce").to_numpy()
    out[TOKEN] = column(TOKEN).iloc[idx].to_numpy()
    out[TS_MS] = ts.iloc[idx].astype("int64").to_numpy()
    models: Counter[tuple[str, str]] = Counter()
    if "model" in names and len(idx):
        model = table.column("model").combine_chunks()
        kinds = {model.type.field(i).name for i in range(model.type.num_fields)}
        mname = (
            model.field("name").to_pandas() if "name" in kinds else pd.Series(["unknown"] * table.num_rows)
        )
        mver = (
            model.field("version").to_pandas()
            if "version" in kinds
            else pd.Series(["unknown"] * table.num_rows)
        )
        pairs = zip(
            mname.iloc[idx].fillna("unknown").astype(str),
            mver.iloc[idx].fillna("unknown").astype(str),
            strict=True,
        )
        models.update(pairs)
    elif len(idx):
        models[("unknown", "unknown")] += len(idx)
    return out, models, skipped


def _iter_file_lines(
    path: Path,
    window: Window,
    features: tuple[str, ...],
    prediction_column: str,
    served_only: bool,
    chunk_rows: int = 0,
) -> Iterator[tuple[pd.DataFrame, Counter[tuple[str, str]], int]]:
    """The file line by line (a bad line is counted and skipped), in chunks of ``chunk_rows`` rows
    of the window (0: one chunk)."""
    columns = [*features, prediction_column, TOKEN, TS_MS]
    rows: list[dict[str, object]] = []
    models: Counter[tuple[str, str]] = Counter()
    skipped = 0
    with path.open("rb") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except ValueError:
                skipped += 1
                continue
            ts = _parse_ts(rec.get("ts")) if isinstance(rec, dict) else None
            if ts is None:
                skipped += 1
                continue
            if not window.start <= ts < window.end:
                continue
            if served_only and rec.get("served") is False:
                continue
            feats = rec.get("features")
            feats = feats if isinstance(feats, dict) else {}
            row = {name: feats.get(name) for name in features}
            prob = rec.get("probability")
            row[prediction_column] = prob if isinstance(prob, int | float) else None
            token = rec.get("customer_token")
            row[TOKEN] = token if isinstance(token, str) else None
            row[TS_MS] = int(ts.timestamp() * 1000)
            rows.append(row)
            model = rec.get("model") if isinstance(rec.get("model"), dict) else {}
            models[(str(model.get("name", "unknown")), str(model.get("version", "unknown")))] += 1
            if chunk_rows and len(rows) >= chunk_rows:
                yield pd.DataFrame(rows, columns=columns), models, skipped
                rows, models, skipped = [], Counter(), 0
    if rows or skipped or not chunk_rows:
        yield pd.DataFrame(rows, columns=columns), models, skipped


def _read_file_lines(
    path: Path, window: Window, features: tuple[str, ...], prediction_column: str, served_only: bool
) -> tuple[pd.DataFrame, Counter[tuple[str, str]], int]:
    return next(_iter_file_lines(path, window, features, prediction_column, served_only))


def _log_schema(features: tuple[str, ...], numerical: tuple[str, ...]) -> pa.Schema:
    """Types pinned for the streaming reader, which fixes a column's type from the first block:
    a number logged as ``3`` first and ``3.5`` later stays one float column, and a field first
    seen late is still read. Categories are left to inference (a code may be logged as a number)."""
    feats = [pa.field(c, pa.float64()) for c in features if c in numerical]
    return pa.schema(
        [
            ("ts", pa.string()),
            ("probability", pa.float64()),
            (TOKEN, pa.string()),
            ("features", pa.struct(feats)),
        ]
    )


def iter_file_chunks(
    path: Path,
    window: Window,
    features: tuple[str, ...],
    numerical: tuple[str, ...],
    prediction_column: str,
    served_only: bool,
    chunk_rows: int = 100_000,
) -> Iterator[tuple[pd.DataFrame, Counter[tuple[str, str]], int]]:
    """The window's rows of one file in chunks, read by Arrow's streaming JSON reader: memory
    follows one chunk, not the file. Raises Arrow's error on a file it refuses (possibly after some
    chunks): the caller then drops what it took from this file and reads it with ``_iter_file_lines``."""
    reader = pa_json.open_json(
        path,
        read_options=pa_json.ReadOptions(block_size=1 << 22),
        parse_options=pa_json.ParseOptions(explicit_schema=_log_schema(features, numerical)),
    )
    batches: list[pa.RecordBatch] = []
    held = 0
    for batch in reader:
        batches.append(batch)
        held += batch.num_rows
        if held >= chunk_rows:
            yield _frame_of_table(
                pa.Table.from_batches(batches), window, features, prediction_column, served_only
            )
            batches, held = [], 0
    if batches:
        yield _frame_of_table(
            pa.Table.from_batches(batches), window, features, prediction_column, served_only
        )


def read_window(
    predictions_dir: Path,
    window: Window,
    features: tuple[str, ...],
    prediction_column: str,
    served_only: bool = True,
) -> LogWindow:
    parts: list[pd.DataFrame] = []
    models: Counter[tuple[str, str]] = Counter()
    skipped = files = 0
    for part in partitions(window):
        path = predictions_dir / part / "predictions.jsonl"
        if not path.is_file():
            continue
        files += 1
        try:
            frame, seen, bad = _read_file_fast(path, window, features, prediction_column, served_only)
        except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, TypeError, ValueError):
            frame, seen, bad = _read_file_lines(path, window, features, prediction_column, served_only)
        parts.append(frame)
        models.update(seen)
        skipped += bad
    columns = [*features, prediction_column, TOKEN, TS_MS]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    # Several versions can answer in one window (canary); the gauges carry the one that served most.
    (name, version), _ = models.most_common(1)[0] if models else (("unknown", "unknown"), 0)
    return LogWindow(frame[columns], name, version, skipped, files)
