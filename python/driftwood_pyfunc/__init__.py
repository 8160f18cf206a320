"""Driftwood's model versions for MLflow's `python_function` flavor, with numpy and pandas alone.

A Driftwood model folder holds the fitted feature transform (`transform.json`), the model
(`model.json` + `weights.bin`, a TF.js layers model of Dense layers, or `gbdt.json`, the trees), the
probability calibration (`calibration.json`) and a holdout sample with the probabilities training
recorded (`serving-sample.json`). `MLmodel` names this package as the flavor's loader module and
ships it in the folder's `code/`, so `mlflow.pyfunc.load_model`, `mlflow models serve` and
`mlflow.pyfunc.spark_udf` score a DataFrame of raw fields into the probabilities Driftwood's API
answers. Loading re-scores the sample, as the API does, and refuses the folder unless every
probability is within 1e-6 of the recorded one.

A forecast version (`forecast_state.json` beside a TF.js LSTM) loads as a `ForecastModel`
(forecast.py): a DataFrame of hourly candles in, the forecasts `/v1/forecast` answers out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from .calibration import Calibration, load_calibration
from .dense import MODEL_FILE, load_dense_chain
from .errors import DriftwoodModelError
from .forecast import STATE_FILE as FORECAST_STATE_FILE
from .forecast import ForecastModel, load_forecast
from .gbdt import GBDT_FILE, load_trees
from .sample_check import require_sample_match
from .transform import Transform, load_transform

__all__ = ["DriftwoodModel", "DriftwoodModelError", "ForecastModel", "_load_pyfunc", "load"]

SERVING_SAMPLE_FILE = "serving-sample.json"


class Scorer(Protocol):
    @property
    def width(self) -> int: ...

    def scores(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]: ...


@dataclass(frozen=True)
class DriftwoodModel:
    transform: Transform
    scorer: Scorer
    calibration: Calibration
    kind: str

    def vectors(self, frame: pd.DataFrame) -> npt.NDArray[np.float32]:
        """The model-ready matrix for the raw fields: what `/v1/features` answers per row."""
        return self.transform.apply(frame)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> npt.NDArray[np.float64]:
        """The probability of the positive class for each row of raw fields (a DataFrame, or
        anything pandas makes one of: a list of row dicts, a dict of columns)."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if len(frame) == 0:
            return np.zeros(0)
        return self.calibration.apply(self.scorer.scores(self.transform.apply(frame)))


def _check_sample(model: DriftwoodModel, folder: Path) -> None:
    path = folder / SERVING_SAMPLE_FILE
    if not path.exists():
        return
    sample = json.loads(path.read_text(encoding="utf-8"))
    rows, want = sample.get("rows"), sample.get("predictions")
    if not isinstance(rows, list) or not isinstance(want, list) or len(rows) != len(want) or not rows:
        raise DriftwoodModelError("MODEL_INVALID", f"{path}: expected as many predictions as rows")
    got = model.predict(pd.DataFrame(rows))
    require_sample_match(got, want, "holdout sample rows", "sample row")


def load(folder: str | Path) -> DriftwoodModel | ForecastModel:
    """A Driftwood model folder (an MLflow model's local copy) ready to score: a classifier, or a
    forecast model when the folder holds a forecast's fitted state."""
    root = Path(folder)
    if (root / FORECAST_STATE_FILE).exists():
        return load_forecast(root)
    has_trees, has_layers = (root / GBDT_FILE).exists(), (root / MODEL_FILE).exists()
    if has_trees == has_layers:
        raise DriftwoodModelError(
            "MODEL_INVALID",
            f"{root}: expected exactly one of {GBDT_FILE} (trees) or {MODEL_FILE} (TF.js layers), "
            f"found {'both' if has_trees else 'neither'}",
        )
    transform = load_transform(root)
    scorer: Scorer = load_trees(root) if has_trees else load_dense_chain(root)
    if scorer.width != transform.width:
        raise DriftwoodModelError(
            "MODEL_INVALID",
            f"{root}: the model takes {scorer.width} inputs but the transform makes {transform.width}",
        )
    model = DriftwoodModel(transform, scorer, load_calibration(root), "gbdt" if has_trees else "layers")
    _check_sample(model, root)
    return model


def _load_pyfunc(data_path: str) -> DriftwoodModel | ForecastModel:
    """MLflow's entry point for a `loader_module` (mlflow.pyfunc.load_model calls it)."""
    return load(data_path)
