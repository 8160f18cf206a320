"""Gradient-boosted trees (`gbdt.json`, tasks/src/models/gbdt-model.ts' format) scored with numpy.

A split sends a row left when `x[feature] <= threshold`, right when greater, and a missing value
(NaN) to the side `missingLeft` says. The margin starts at baseScore and adds each tree's leaf in
tree order, in float64, as `compileGbdtMargin` does, so the sums are the same to the last bit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import DriftwoodModelError

GBDT_FILE = "gbdt.json"
NODE_KEYS = ("feature", "threshold", "missingLeft", "left", "right", "value")


@dataclass(frozen=True)
class Tree:
    """One tree as arrays. A leaf points to itself on both sides with an infinite threshold, so a
    fixed number of steps (the depth) walks every row to its leaf without asking which are done."""

    feature: npt.NDArray[np.intp]
    threshold: npt.NDArray[np.float64]
    missing_left: npt.NDArray[np.bool_]
    left: npt.NDArray[np.intp]
    right: npt.NDArray[np.intp]
    value: npt.NDArray[np.float64]
    depth: int
    # Node i's left child at 2i, right child at 2i + 1: one gather picks the side.
    children: npt.NDArray[np.intp]


def sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The logistic function as gbdt-model.ts `sigmoid` writes it (a branch per sign)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass(frozen=True)
class Trees:
    width: int
    base_score: float
    trees: tuple[Tree, ...]

    def margins(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        # Flat gathers (`take`) rather than fancy indexing: half the time on 100k rows x 60 trees.
        flat = np.ascontiguousarray(x).ravel()
        offsets = np.arange(x.shape[0], dtype=np.intp) * x.shape[1]
        # The transform never makes NaN; the missing-value side is only looked up when there is one.
        any_missing = bool(np.isnan(flat).any())
        z = np.full(x.shape[0], self.base_score)
        for tree in self.trees:
            node = np.zeros(x.shape[0], dtype=np.intp)
            for _ in range(tree.depth):
                # A float32 value against a float64 threshold: numpy compares them as float64, as JS does.
                v = flat.take(offsets + tree.feature.take(node))
                left = v <= tree.threshold.take(node)
                if any_missing:
                    left |= np.isnan(v) & tree.missing_left.take(node)
                node = tree.children.take(2 * node + ~left)
            z += tree.value.take(node)
        return z

    def scores(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        if x.shape[1] != self.width:
            raise DriftwoodModelError(
                "SCHEMA_MISMATCH",
                f"{GBDT_FILE}: the model takes {self.width} columns, the rows have {x.shape[1]}",
            )
        return sigmoid(self.margins(x))


def _bad(message: str) -> DriftwoodModelError:
    return DriftwoodModelError("MODEL_INVALID", f"{GBDT_FILE}: {message}")


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _tree(raw: Any, where: str, width: int) -> Tree:
    if not isinstance(raw, dict):
        raise _bad(f"{where}: expected an object")
    size = len(raw["feature"]) if isinstance(raw.get("feature"), list) else 0
    if size == 0:
        raise _bad(f"{where}.feature: expected a non-empty list")
    for key in NODE_KEYS:
        if not isinstance(raw.get(key), list) or len(raw[key]) != size:
            raise _bad(f"{where}.{key}: expected a list of {size} entries (one per node)")
    feature, threshold, left, right = (list(raw[k]) for k in ("feature", "threshold", "left", "right"))
    depth = [0] * size
    parents = [-1] * size
    for i in range(size):
        f = feature[i]
        if not (isinstance(f, int) and not isinstance(f, bool) and -1 <= f < width):
            raise _bad(f"{where} node {i}: feature index {f!r} is not -1 (leaf) or a column 0..{width - 1}")
        if not _number(raw["value"][i]) or not isinstance(raw["missingLeft"][i], bool):
            raise _bad(f"{where} node {i}: value or missingLeft is not a finite number / true or false")
        if f == -1:
            # A leaf: stays where it is at every step (threshold +inf sends any number "left" = itself).
            feature[i], threshold[i], left[i], right[i] = 0, math.inf, i, i
            continue
        if not _number(threshold[i]):
            raise _bad(f"{where} node {i}: threshold {threshold[i]!r} is not a finite number")
        for side, child in (("left", left[i]), ("right", right[i])):
            if not (isinstance(child, int) and i < child < size) or parents[child] != -1:
                raise _bad(
                    f"{where} node {i}: {side} child {child!r} is not a node after it with no other parent"
                )
            parents[child] = i
            depth[child] = depth[i] + 1
    if any(p == -1 for p in parents[1:]):
        raise _bad(f"{where} node {parents[1:].index(-1) + 1}: no parent points to it")
    return Tree(
        feature=np.array(feature, dtype=np.intp),
        threshold=np.array(threshold, dtype=np.float64),
        missing_left=np.array(raw["missingLeft"], dtype=np.bool_),
        left=np.array(left, dtype=np.intp),
        right=np.array(right, dtype=np.intp),
        value=np.array(raw["value"], dtype=np.float64),
        depth=max(depth),
        children=np.stack([np.array(left, dtype=np.intp), np.array(right, dtype=np.intp)], axis=1).ravel(),
    )


def parse_trees(document: object) -> Trees:
    if not isinstance(document, dict):
        raise _bad("expected a JSON object")
    if document.get("format") != "driftwood-gbdt" or document.get("version") != 1:
        raise _bad(
            f"expected format 'driftwood-gbdt' version 1, got {document.get('format')!r} "
            f"version {document.get('version')!r}"
        )
    width = document.get("width")
    if not (isinstance(width, int) and not isinstance(width, bool) and width >= 1):
        raise _bad(f"width: expected a whole number >= 1, got {width!r}")
    base = document.get("baseScore")
    if not _number(base):
        raise _bad(f"baseScore: expected a finite number, got {base!r}")
    trees = document.get("trees")
    if not isinstance(trees, list):
        raise _bad("trees: expected a list")
    return Trees(
        width=width,
        base_score=float(base),  # type: ignore[arg-type]
        trees=tuple(_tree(t, f"trees[{k}]", width) for k, t in enumerate(trees)),
    )


def load_trees(folder: Path) -> Trees:
    try:
        return parse_trees(json.loads((folder / GBDT_FILE).read_text(encoding="utf-8")))
    except json.JSONDecodeError as err:
        raise _bad(f"not valid JSON ({err})") from None
