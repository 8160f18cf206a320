"""The probability calibration (`calibration.json`) applied to a model's scores.

tasks/src/models/calibration.ts `applyCalibration`, vectorised: Platt scaling on the score's logit,
or isotonic knots read by linear interpolation between the last knot at or below the score and the
next one. A version saved before calibration existed has no file and is scored as is.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .errors import DriftwoodModelError

CALIBRATION_FILE = "calibration.json"
EPS = 1e-7

Vector = npt.NDArray[np.float64]


def _sigmoid(z: Vector) -> Vector:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _logit(p: Vector) -> Vector:
    q = np.minimum(np.maximum(p, EPS), 1 - EPS)
    return np.log(q / (1 - q))


@dataclass(frozen=True)
class Calibration:
    method: str
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def apply(self, p: Vector) -> Vector:
        if self.method == "platt":
            return _sigmoid(self.a * _logit(p) + self.b)
        if self.method == "isotonic":
            return self._isotonic(p)
        return p

    def _isotonic(self, p: Vector) -> Vector:
        x = np.asarray(self.x)
        y = np.asarray(self.y)
        last = len(x) - 1
        if last == 0:
            return np.full(p.shape, y[0])
        lo = np.clip(np.searchsorted(x, p, side="right") - 1, 0, last - 1)
        hi = lo + 1
        x0, x1, y0 = x[lo], x[hi], y[lo]
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = np.where(x1 == x0, y0, y0 + ((p - x0) / (x1 - x0)) * (y[hi] - y0))
        return np.where(p <= x[0], y[0], np.where(p >= x[last], y[last], inner))


NONE = Calibration("none")


def _bad(message: str) -> DriftwoodModelError:
    return DriftwoodModelError("MODEL_INVALID", f"{CALIBRATION_FILE}: {message}")


def _finite(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def parse_calibration(document: object) -> Calibration:
    if not isinstance(document, dict):
        raise _bad(f"expected an object with a method, got {document!r}")
    method = document.get("method")
    if method == "none":
        return NONE
    if method == "platt":
        slope = _finite(document.get("a"), "a")
        if not slope > 0:
            raise _bad(f"a: {slope} is not a slope above 0, and would reverse the model's ranking")
        return Calibration("platt", a=slope, b=_finite(document.get("b"), "b"))
    if method == "isotonic":
        xs, ys = document.get("x"), document.get("y")
        if not isinstance(xs, list) or not isinstance(ys, list) or not xs or len(xs) != len(ys):
            raise _bad("isotonic: expected x and y as lists of the same length, at least one knot")
        x = tuple(_finite(v, f"x[{i}]") for i, v in enumerate(xs))
        y = tuple(_finite(v, f"y[{i}]") for i, v in enumerate(ys))
        if any(b < a for a, b in itertools.pairwise(x)) or any(b < a for a, b in itertools.pairwise(y)):
            raise _bad("isotonic: knots and values must not decrease")
        return Calibration("isotonic", x=x, y=y)
    raise _bad(f"method: expected platt, isotonic or none, got {method!r}")


def load_calibration(folder: Path) -> Calibration:
    path = folder / CALIBRATION_FILE
    if not path.exists():
        return NONE
    try:
        return parse_calibration(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as err:
        raise _bad(f"not valid JSON ({err})") from None
