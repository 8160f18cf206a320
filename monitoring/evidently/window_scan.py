"""One pass over a window of the prediction log, chunk by chunk: the column summaries of every row
(for the exact drift decision), a seeded sample of rows (for Evidently's HTML report) and, when
quality is scored, the score, token and time of every row (for the label join). Memory follows one
chunk plus what is kept, not the window as a frame: an hour of a busy API is millions of rows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .column_summary import ColumnSummary, RowSample, SummaryBuilder
from .prediction_log import (
    TOKEN,
    TS_MS,
    LogWindow,
    Window,
    _iter_file_lines,
    iter_file_chunks,
    partitions,
)
from .reference import prepare


@dataclass
class ScannedWindow:
    rows: int
    summaries: dict[str, ColumnSummary]
    sample: pd.DataFrame
    sampled: bool
    # prediction, customer token and time of every row; empty unless asked for (``keep_labels``).
    labels_frame: pd.DataFrame
    model_name: str
    model_version: str
    skipped_lines: int
    files_read: int

    def log_window(self) -> LogWindow:
        return LogWindow(
            self.labels_frame, self.model_name, self.model_version, self.skipped_lines, self.files_read
        )


class _Sink:
    """What one file contributes; dropped whole when Arrow refuses the file part-way."""

    def __init__(
        self,
        numerical: tuple[str, ...],
        categorical: tuple[str, ...],
        prediction_column: str,
        size: int,
        seed: int,
    ) -> None:
        self.numerical, self.categorical, self.prediction_column = numerical, categorical, prediction_column
        self.summary = SummaryBuilder((*numerical, prediction_column), categorical)
        self.sample = RowSample(size, seed)
        self.labels: list[pd.DataFrame] = []
        self.models: Counter[tuple[str, str]] = Counter()
        self.skipped = 0

    def add(
        self, frame: pd.DataFrame, models: Counter[tuple[str, str]], skipped: int, keep_labels: bool
    ) -> None:
        self.models.update(models)
        self.skipped += skipped
        if not len(frame):
            return
        typed = prepare(frame, self.numerical, self.categorical)
        typed[self.prediction_column] = pd.to_numeric(frame[self.prediction_column], errors="coerce").astype(
            "float64"
        )
        self.summary.add(typed)
        self.sample.add(typed)
        if keep_labels:
            self.labels.append(frame[[self.prediction_column, TOKEN, TS_MS]])

    def absorb(self, other: _Sink) -> None:
        self.summary.absorb(other.summary)
        self.sample.absorb(other.sample)
        self.labels.extend(other.labels)
        self.models.update(other.models)
        self.skipped += other.skipped


def scan_window(
    predictions_dir: Path,
    window: Window,
    numerical: tuple[str, ...],
    categorical: tuple[str, ...],
    prediction_column: str,
    served_only: bool = True,
    sample_rows: int = 50_000,
    seed: int = 0,
    keep_labels: bool = False,
    chunk_rows: int = 100_000,
) -> ScannedWindow:
    features = (*numerical, *categorical)
    total = _Sink(numerical, categorical, prediction_column, sample_rows, seed)
    files = 0
    for i, part in enumerate(partitions(window)):
        path = predictions_dir / part / "predictions.jsonl"
        if not path.is_file():
            continue
        files += 1
        # Each file draws its sample keys from its own stream, so a re-read gives the same rows.
        args = (numerical, categorical, prediction_column, sample_rows, int(np.uint32(seed + i)))
        sink = _Sink(*args)
        try:
            for chunk in iter_file_chunks(
                path, window, features, numerical, prediction_column, served_only, chunk_rows
            ):
                sink.add(*chunk, keep_labels)
        except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, TypeError, ValueError):
            sink = _Sink(*args)
            for chunk in _iter_file_lines(path, window, features, prediction_column, served_only, chunk_rows):
                sink.add(*chunk, keep_labels)
        total.absorb(sink)
    label_columns = [prediction_column, TOKEN, TS_MS]
    labels = (
        pd.concat(total.labels, ignore_index=True) if total.labels else pd.DataFrame(columns=label_columns)
    )
    # Several versions can answer in one window (canary); the gauges carry the one that served most.
    (name, version), _ = total.models.most_common(1)[0] if total.models else (("unknown", "unknown"), 0)
    return ScannedWindow(
        rows=total.summary.rows,
        summaries=total.summary.finish(),
        sample=total.sample.frame([*features, prediction_column]),
        sampled=total.sample.sampled,
        labels_frame=labels,
        model_name=name,
        model_version=version,
        skipped_lines=total.skipped,
        files_read=files,
    )
