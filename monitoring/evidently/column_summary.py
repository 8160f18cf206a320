"""Per-column statistics of a window or a reference, built chunk by chunk.

A column is kept as its distinct values and how often each occurs. That is the whole multiset of the
column, so every drift test Evidently runs gives the same score from it as from the rows
(``exact_drift.py``), while memory follows one chunk plus the distinct values, not a frame of every
row. Numbers that survive a round trip through float32 (counts, whole amounts) are kept as float32
until the chunks are merged; the merge widens them back exactly.

``RowSample`` keeps a uniform sample of rows of the same stream for Evidently's HTML report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd


class ColumnSummary:
    """Sorted distinct values (float64 for numbers, str for categories) with their counts. Numbers
    hold finite values only: Evidently drops nulls and infinities before testing a column."""

    def __init__(self, values: np.ndarray, counts: np.ndarray) -> None:
        self.values = values
        self.counts = counts
        self.total = int(counts.sum(dtype=np.int64)) if len(counts) else 0

    @property
    def distinct(self) -> int:
        return len(self.values)

    def series(self) -> pd.Series:
        """The rows back, in value order: for the tests computed by Evidently's own functions."""
        return pd.Series(np.repeat(self.values, self.counts))


def _narrow_counts(counts: np.ndarray) -> np.ndarray:
    """Counts in the smallest unsigned type that holds them: mostly 1 byte, as a continuous
    feature's values are nearly all distinct. Sums and cumulative sums widen them again."""
    top = int(counts.max()) if len(counts) else 0
    for kind in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(kind).max:
            return counts.astype(kind)
    return counts.astype(np.int64)


def _compact(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distinct, counts = np.unique(values, return_counts=True)
    narrow = distinct.astype(np.float32)
    if np.array_equal(narrow.astype(np.float64), distinct):
        distinct = narrow
    return distinct, _narrow_counts(counts)


def merge_numeric(parts: list[tuple[np.ndarray, np.ndarray]]) -> ColumnSummary:
    """One summary from per-chunk (distinct values, counts) pairs: equal values are added up."""
    if not parts:
        return ColumnSummary(np.empty(0), np.empty(0, dtype=np.int64))
    many = len(parts) > 1
    values = np.concatenate([p[0] for p in parts]).astype(np.float64, copy=False)
    counts = np.concatenate([p[1].astype(np.int64, copy=False) for p in parts])
    parts.clear()
    if many:
        order = np.argsort(values, kind="stable")
        values, counts = values[order], counts[order]
        del order
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        if len(starts) < len(values):
            values, counts = values[starts], np.add.reduceat(counts, starts)
    return ColumnSummary(values, _narrow_counts(counts))


def merge_categorical(counter: Counter[str]) -> ColumnSummary:
    keys = sorted(counter)
    return ColumnSummary(np.array(keys, dtype=object), np.array([counter[k] for k in keys], dtype=np.int64))


class SummaryBuilder:
    """Adds chunks of a frame already typed by ``reference.prepare`` (numbers float64, categories
    str); ``finish`` merges them. Builders of two parts of one stream merge with ``absorb``."""

    def __init__(self, numerical: Iterable[str], categorical: Iterable[str]) -> None:
        self._numeric: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {c: [] for c in numerical}
        self._categorical: dict[str, Counter[str]] = {c: Counter() for c in categorical}
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        self.rows += len(frame)
        for c, parts in self._numeric.items():
            values = frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
            values = values[np.isfinite(values)]
            if len(values):
                parts.append(_compact(values))
        for c, counter in self._categorical.items():
            counter.update(frame[c].value_counts(sort=False).to_dict())

    def absorb(self, other: SummaryBuilder) -> None:
        self.rows += other.rows
        for c, parts in other._numeric.items():
            self._numeric[c].extend(parts)
        for c, counter in other._categorical.items():
            self._categorical[c].update(counter)

    def finish(self) -> dict[str, ColumnSummary]:
        """Merges column by column, dropping each column's chunks as it goes (``merge_numeric``
        empties the list), so the chunks and the result are not held twice."""
        out = {c: merge_numeric(parts) for c, parts in self._numeric.items()}
        out.update({c: merge_categorical(counter) for c, counter in self._categorical.items()})
        return out


class RowSample:
    """A uniform sample without replacement of at most ``size`` rows of a stream of chunks (0 keeps
    every row). Each row draws a key from a seeded generator and the rows with the ``size``
    smallest keys stay: the same stream gives the same sample, and two samples merge into one."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self._rng = np.random.default_rng(seed)
        self._parts: list[pd.DataFrame] = []
        self._keys = np.empty(0)
        self.seen = 0

    def add(self, frame: pd.DataFrame) -> None:
        self.seen += len(frame)
        keys = self._rng.random(len(frame))
        if self.size and len(self._keys) >= self.size:
            # Only rows that beat the current cut can enter: few, once the sample is full.
            cut = keys < self._keys.max()
            frame, keys = frame[cut], keys[cut]
        self._parts.append(frame.reset_index(drop=True))
        self._keys = np.concatenate([self._keys, keys])
        self._trim()

    def absorb(self, other: RowSample) -> None:
        self.seen += other.seen
        self._parts.extend(other._parts)
        self._keys = np.concatenate([self._keys, other._keys])
        self._trim()

    def _trim(self) -> None:
        if not self.size or len(self._keys) <= self.size:
            return
        frame = pd.concat(self._parts, ignore_index=True)
        keep = np.sort(np.argpartition(self._keys, self.size - 1)[: self.size])
        self._parts = [frame.iloc[keep].reset_index(drop=True)]
        self._keys = self._keys[keep]

    def frame(self, columns: list[str]) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame(columns=columns)
        return pd.concat(self._parts, ignore_index=True)[columns]

    @property
    def sampled(self) -> bool:
        return bool(self.size) and self.seen > self.size
