"""The fitted feature transform (`transform.json`) applied to a pandas DataFrame.

The very computation of `writeRow` in tasks/src/features/transform.ts, column by column: a numeric
field is read the way JavaScript's `Number` reads it (numbers and numeric strings; anything not
finite is missing), clipped to ±1e12, imputed with the training median, centred and scaled in
float64 and stored as float32, followed by its 0/1 missing indicator when training saw missing
values; a categorical field is a non-empty string (else the training's most frequent category),
one-hot encoded with a last column for any category training did not keep.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .errors import DriftwoodModelError

TRANSFORM_FILE = "transform.json"
TRANSFORM_FORMAT = "driftwood.transform/v2"
UNSEEN = "__unseen__"
INPUT_LIMIT = 1e12

# JavaScript's StringToNumber grammar (ECMA-262 §7.1.4.1.1): a decimal literal with an optional sign
# and exponent, or an unsigned 0x/0o/0b integer. Python's float() accepts more ("1_000", "nan").
_DECIMAL = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|Infinity)")
_RADIX = {"0x": 16, "0o": 8, "0b": 2}
_RADIX_DIGITS = {16: re.compile(r"[0-9a-fA-F]+"), 8: re.compile(r"[0-7]+"), 2: re.compile(r"[01]+")}


def js_number(value: object) -> float:
    """A field's number as tasks/src/features/transform.ts `toNumber` reads it; NaN when missing."""
    if isinstance(value, bool | np.bool_):
        return math.nan
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if not isinstance(value, str):
        return math.nan
    text = value.strip()
    if text == "":
        return math.nan
    if _DECIMAL.fullmatch(text):
        return float(text.replace("Infinity", "inf"))
    radix = _RADIX.get(text[:2].lower())
    if radix is not None and _RADIX_DIGITS[radix].fullmatch(text[2:]):
        return float(int(text[2:], radix))
    return math.nan


@dataclass(frozen=True)
class NumericFeature:
    name: str
    impute: float
    center: float
    scale: float
    missing_indicator: bool


@dataclass(frozen=True)
class CategoricalFeature:
    name: str
    categories: tuple[str, ...]
    impute: str


def _numbers(column: pd.Series | None, rows: int) -> npt.NDArray[np.float64]:
    """The column as float64 with NaN where `toNumber` gives undefined, clipped to ±INPUT_LIMIT."""
    if column is None or pd.api.types.is_bool_dtype(column.dtype):
        return np.full(rows, np.nan)
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    else:
        values = np.fromiter((js_number(v) for v in column.to_numpy(dtype=object)), np.float64, rows)
    values[~np.isfinite(values)] = np.nan
    return np.clip(values, -INPUT_LIMIT, INPUT_LIMIT)


def _category_codes(column: pd.Series | None, feature: CategoricalFeature, rows: int) -> npt.NDArray[np.intp]:
    """Each row's one-hot position: its category's index, or len(categories) for the unseen bucket."""
    unseen = len(feature.categories)
    if column is None:
        values: npt.NDArray[Any] = np.full(rows, feature.impute, dtype=object)
    else:
        values = column.to_numpy(dtype=object)
        present = np.fromiter((isinstance(v, str) and v != "" for v in values), bool, rows)
        values = np.where(present, values, feature.impute)
    codes = pd.Categorical(values, categories=list(feature.categories)).codes.astype(np.intp)
    codes[codes < 0] = unseen
    return codes


@dataclass(frozen=True)
class Transform:
    numeric: tuple[NumericFeature, ...]
    categorical: tuple[CategoricalFeature, ...]
    outputs: tuple[str, ...]

    @property
    def width(self) -> int:
        return len(self.outputs)

    def input_names(self) -> list[str]:
        return [n.name for n in self.numeric] + [c.name for c in self.categorical]

    def apply(self, frame: pd.DataFrame) -> npt.NDArray[np.float32]:
        """The model-ready matrix (rows by outputs, float32) for the frame's raw fields. A field the
        frame lacks is missing in every row; columns the transform does not use are ignored."""
        rows = len(frame)
        out = np.zeros((rows, self.width), dtype=np.float32)
        at = 0
        for n in self.numeric:
            values = _numbers(frame.get(n.name), rows)
            missing = np.isnan(values)
            out[:, at] = (np.where(missing, n.impute, values) - n.center) / n.scale
            at += 1
            if n.missing_indicator:
                out[:, at] = missing
                at += 1
        for c in self.categorical:
            codes = _category_codes(frame.get(c.name), c, rows)
            out[np.arange(rows), at + codes] = 1
            at += len(c.categories) + 1
        return out


def _bad(message: str) -> DriftwoodModelError:
    return DriftwoodModelError("MODEL_INVALID", f"{TRANSFORM_FILE}: {message}")


def _finite(entry: dict[str, Any], key: str, where: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"{where}.{key}: expected a finite number, got {value!r}")
    return float(value)


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"{where}: expected a list of strings")
    return tuple(value)


def parse_transform(document: object) -> Transform:
    """Checks a parsed transform.json is one this code runs (tasks/src/features/transform.ts
    `parseTransformState`), naming what is wrong."""
    if not isinstance(document, dict):
        raise _bad("expected a JSON object")
    if document.get("format") != TRANSFORM_FORMAT:
        raise _bad(f"expected format {TRANSFORM_FORMAT}, got {document.get('format')!r}: retrain the model")
    numeric_raw = document.get("numeric")
    categorical_raw = document.get("categorical")
    if not isinstance(numeric_raw, list) or not isinstance(categorical_raw, list):
        raise _bad("numeric and categorical must be lists")
    numeric: list[NumericFeature] = []
    for i, entry in enumerate(numeric_raw):
        where = f"numeric[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _bad(f"{where}: expected an object with a name")
        scale = _finite(entry, "scale", where)
        if scale == 0:
            raise _bad(f"{where}.scale: must not be 0")
        numeric.append(
            NumericFeature(
                name=entry["name"],
                impute=_finite(entry, "impute", where),
                center=_finite(entry, "center", where),
                scale=scale,
                missing_indicator=entry.get("missingIndicator") is True,
            )
        )
    categorical: list[CategoricalFeature] = []
    for i, entry in enumerate(categorical_raw):
        where = f"categorical[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _bad(f"{where}: expected an object with a name")
        impute = entry.get("impute")
        if not isinstance(impute, str):
            raise _bad(f"{where}.impute: expected a string, got {impute!r}")
        categorical.append(
            CategoricalFeature(
                name=entry["name"],
                categories=_strings(entry.get("categories"), f"{where}.categories"),
                impute=impute,
            )
        )
    outputs = _strings(document.get("outputs"), "outputs")
    width = sum(2 if n.missing_indicator else 1 for n in numeric) + sum(
        len(c.categories) + 1 for c in categorical
    )
    if width != len(outputs):
        raise _bad(f"the features make {width} columns but outputs lists {len(outputs)}")
    return Transform(numeric=tuple(numeric), categorical=tuple(categorical), outputs=outputs)


def load_transform(folder: Path) -> Transform:
    path = folder / TRANSFORM_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DriftwoodModelError(
            "MODEL_INVALID", f"{path} is missing: not a Driftwood model folder"
        ) from None
    except json.JSONDecodeError as err:
        raise _bad(f"not valid JSON ({err})") from None
    return parse_transform(document)
