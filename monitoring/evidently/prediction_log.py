"""Reads a time window of the API's prediction log.

The log is JSON Lines under ``<predictions_dir>/dt=YYYY-MM-DD/hr=HH/predictions.jsonl`` (written by
serving/src/predictions/log.ts). Fields this reader relies on, per line:

- ``ts``: ISO-8601 time of the prediction (required; lines without a parsable one are skipped);
- ``features``: object with the raw feature fields (a missing field becomes null);
- ``probability``: the model's score (the prediction-drift column);
- ``model.name`` / ``model.version``: which model answered (labels of the gauges);
- ``served``: false for shadow predictions, left out unless ``served_only: false``.

Anything else (``request_id``, ``customer_token``, ``label``, ``alias``) is ignored. Bad lines are
counted and skipped, never fatal: one torn write must not stop monitoring.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd


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


def read_window(
    predictions_dir: Path,
    window: Window,
    features: tuple[str, ...],
    prediction_column: str,
    served_only: bool = True,
) -> LogWindow:
    rows: list[dict[str, object]] = []
    models: Counter[tuple[str, str]] = Counter()
    skipped = files = 0
    for part in partitions(window):
        path = predictions_dir / part / "predictions.jsonl"
        if not path.is_file():
            continue
        files += 1
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
                rows.append(row)
                model = rec.get("model") if isinstance(rec.get("model"), dict) else {}
                models[(str(model.get("name", "unknown")), str(model.get("version", "unknown")))] += 1
    frame = pd.DataFrame(rows, columns=[*features, prediction_column])
    # Several versions can answer in one window (canary); the gauges carry the one that served most.
    (name, version), _ = models.most_common(1)[0] if models else (("unknown", "unknown"), 0)
    return LogWindow(frame, name, version, skipped, files)
