"""The load-time check every flavor makes: the folder's sample, scored here, equals what training
recorded, so a damaged file or a scoring difference refuses the model instead of serving it."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import DriftwoodModelError

# As tasks/src/models/serving-sample.ts. The forecast sample's log returns are TF.js's float32
# outputs unscaled: numpy's sums differ in the last bits.
SAMPLE_TOLERANCE = 1e-6


def require_sample_match(got: npt.NDArray[Any], want: list[Any], items: str, item: str) -> None:
    """Raises MODEL_INVALID naming the first of `items` whose answer is off by more than the tolerance."""
    off = np.abs(got - np.asarray(want, dtype=np.float64)) > SAMPLE_TOLERANCE
    if off.any():
        i = int(np.argmax(off))
        raise DriftwoodModelError(
            "MODEL_INVALID",
            f"{int(off.sum())} of {len(want)} {items} fail: {item} {i} answers {got[i]}, "
            f"training recorded {want[i]} (a damaged file, or a model this package scores differently)",
        )
