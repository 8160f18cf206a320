"""The reference: the champion's training data as raw feature rows.

``load_reference`` is deliberately small and swappable (the sidecar takes any ``ReferenceLoader``):
today it reads a CSV or Parquet file, or a folder of Parquet files, from a local path or ``file://``
URI. The content hash labels every gauge, so a dashboard shows which training data a drift score
was measured against. The prepared reference (typed, sampled) is kept in a cache keyed by that
hash, so a warm sidecar reads and hashes the file but does not parse or sample it again.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .column_summary import ColumnSummary, RowSample, SummaryBuilder
from .errors import MonitorError

ReferenceLoader = Callable[[str], pd.DataFrame]
# Rows per chunk when the reference is summarised: memory follows a chunk, not the file.
CHUNK_ROWS = 100_000


def _local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        return Path(uri[len("file://") :])
    if "://" in uri:
        raise MonitorError(
            "CONFIG_INVALID", f"setting reference: only local paths and file:// URIs, got {uri!r}"
        )
    return Path(uri)


def _files(uri: str) -> list[Path]:
    path = _local_path(uri)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if not files:
            raise MonitorError(
                "REFERENCE_INVALID", f"setting reference: folder {path} holds no .parquet file"
            )
        return files
    if not path.is_file():
        raise MonitorError("REFERENCE_INVALID", f"setting reference: {path} does not exist")
    return [path]


def load_reference(uri: str) -> pd.DataFrame:
    """Reads the reference rows (CSV, Parquet, or a folder of Parquet parts)."""
    files = _files(uri)
    frames = []
    for f in files:
        if f.suffix == ".csv":
            frames.append(pd.read_csv(f))
        elif f.suffix == ".parquet":
            frames.append(pd.read_parquet(f))
        else:
            raise MonitorError("REFERENCE_INVALID", f"setting reference: {f} is neither .csv nor .parquet")
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def iter_reference(
    uri: str, columns: tuple[str, ...], chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """The reference's rows in chunks, only ``columns`` (those present) read from Parquet."""
    for f in _files(uri):
        if f.suffix == ".csv":
            yield from pd.read_csv(f, chunksize=chunk_rows)
        elif f.suffix == ".parquet":
            parquet = pq.ParquetFile(f)
            present = [c for c in columns if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=chunk_rows, columns=present):
                yield batch.to_pandas()
        else:
            raise MonitorError("REFERENCE_INVALID", f"setting reference: {f} is neither .csv nor .parquet")


def reference_hash(uri: str) -> str:
    """sha256 of the reference's bytes (files in name order), shortened to 16 hex characters."""
    digest = hashlib.sha256()
    for f in _files(uri):
        digest.update(f.name.encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def prepare(frame: pd.DataFrame, numerical: tuple[str, ...], categorical: tuple[str, ...]) -> pd.DataFrame:
    """Keeps the monitored columns with the types Evidently is told about: numbers as float (a
    non-number becomes null), categories as strings. Missing columns are an error naming them."""
    missing = [c for c in (*numerical, *categorical) if c not in frame.columns]
    if missing:
        raise MonitorError(
            "SCHEMA_MISMATCH", f"columns {missing} are declared in the config but absent from the data"
        )
    out = pd.DataFrame(index=frame.index)
    for c in numerical:
        out[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    for c in categorical:
        out[c] = frame[c].astype("string").fillna("__missing__").astype(str)
    return out


def sample(frame: pd.DataFrame, max_rows: int, seed: int) -> tuple[pd.DataFrame, bool]:
    """A seeded uniform sample of ``max_rows`` rows when the frame is larger (0 = never sample)."""
    if max_rows == 0 or len(frame) <= max_rows:
        return frame, False
    return frame.sample(n=max_rows, random_state=seed).reset_index(drop=True), True


@dataclass(frozen=True)
class ColumnStats:
    """What Evidently's default test choice reads from a reference column, computed once per
    reference instead of on every run: its finite values and, when there are at most five distinct
    ones, which."""

    count: int
    small_uniques: frozenset[object] | None


def column_stats(frame: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, ColumnStats]:
    out = {}
    for c in columns:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col):
            col = col.replace([np.inf, -np.inf], np.nan)
        col = col.dropna()
        few = col.nunique() <= 5
        out[c] = ColumnStats(len(col), frozenset(col.unique().tolist()) if few else None)
    return out


@dataclass(frozen=True)
class PreparedReference:
    hash: str
    frame: pd.DataFrame
    rows_total: int
    sampled: bool
    stats: dict[str, ColumnStats] = field(default_factory=dict)
    # Every row's column summaries (column_summary.py): the exact drift decision is made from these;
    # ``frame`` is the sample Evidently's HTML report is drawn from.
    summaries: dict[str, ColumnSummary] = field(default_factory=dict)


class ReferenceCache:
    """Prepared references by content hash. Small: a sidecar watches one champion at a time, and
    keeping the previous one makes a rollback cheap."""

    def __init__(self, loader: ReferenceLoader = load_reference, keep: int = 2) -> None:
        self._loader = loader
        self._keep = keep
        self._items: dict[str, PreparedReference] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(
        self,
        uri: str,
        prediction_column: str,
        numerical: tuple[str, ...],
        categorical: tuple[str, ...],
        max_rows: int,
        key: str | None = None,
        on_miss: Callable[[], None] | None = None,
    ) -> PreparedReference:
        """``key`` names content-addressed data (a snapshot id: 16+ hex characters), which then is
        not re-hashed; ``on_miss`` runs before a load (to verify the file once)."""
        key = key[:16] if key else reference_hash(uri)
        cache_key = f"{key}:{max_rows}:{','.join(numerical)}:{','.join(categorical)}:{prediction_column}"
        with self._lock:
            hit = self._items.get(cache_key)
            if hit is not None:
                self.hits += 1
                return hit
        self.misses += 1
        if on_miss is not None:
            on_miss()
        prepared = self._prepare(uri, key, prediction_column, numerical, categorical, max_rows)
        with self._lock:
            self._items[cache_key] = prepared
            while len(self._items) > self._keep:
                self._items.pop(next(iter(self._items)))
        return prepared

    def _chunks(self, uri: str, columns: tuple[str, ...]) -> Iterator[pd.DataFrame]:
        if self._loader is load_reference:
            yield from iter_reference(uri, columns)
            return
        raw = self._loader(uri)
        for start in range(0, max(len(raw), 1), CHUNK_ROWS):
            yield raw.iloc[start : start + CHUNK_ROWS]

    def _prepare(
        self,
        uri: str,
        key: str,
        prediction_column: str,
        numerical: tuple[str, ...],
        categorical: tuple[str, ...],
        max_rows: int,
    ) -> PreparedReference:
        """Types, summarises and samples the reference chunk by chunk."""
        sample = RowSample(max_rows, seed=int(key[:8], 16))
        builder: SummaryBuilder | None = None
        columns: list[str] = [*numerical, *categorical]
        for raw in self._chunks(uri, (*numerical, *categorical, prediction_column)):
            frame = prepare(raw, numerical, categorical)
            # The training data has no model score; prediction drift compares against the champion's
            # scores on its training rows when the reference carries them, else that column is skipped.
            if builder is None:
                scored = prediction_column in raw.columns
                columns = [*numerical, *categorical, *([prediction_column] if scored else [])]
                builder = SummaryBuilder([*numerical, *([prediction_column] if scored else [])], categorical)
            if prediction_column in columns:
                frame[prediction_column] = pd.to_numeric(raw[prediction_column], errors="coerce").astype(
                    "float64"
                )
            builder.add(frame)
            sample.add(frame)
        summaries = builder.finish() if builder is not None else {}
        stats = {
            c: ColumnStats(s.total, frozenset(s.values.tolist()) if s.distinct <= 5 else None)
            for c, s in summaries.items()
            if c != prediction_column
        }
        return PreparedReference(key, sample.frame(columns), sample.seen, sample.sampled, stats, summaries)
