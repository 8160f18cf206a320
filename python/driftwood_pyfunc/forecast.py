"""Forecast versions (sequence_forecast datasets, the hourly BTC LSTM) for the `python_function` flavor.

What `POST /v1/forecast` does with its `candles`, on a DataFrame of the same fields (`open_time`,
`open`, `high`, `low`, `close`, `volume`; consecutive hours, oldest first): the log-change features of
tasks/src/forecast/windows.ts (`featureRow`), scaled with `forecast_state.json` (`scaleInputs`), the
LSTM, and the unscaled log return (`unscaleTarget`) and price. The API forecasts from the last
`window_hours + 1` candles; here every window of the frame is forecast, one output row per candle that
has `window_hours` candles before it, so a frame of exactly `window_hours + 1` candles gives the one
forecast the API answers and a longer one gives a backtest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .dense import MODEL_FILE, WEIGHTS_FILE
from .errors import DriftwoodModelError
from .lstm import LstmRegressor, parse_lstm
from .sample_check import require_sample_match

STATE_FILE = "forecast_state.json"
SAMPLE_FILE = "forecast-sample.json"
SAMPLE_FORMAT = "driftwood-forecast-sample/1"
WINDOW_FEATURES = ("close_return", "log_range", "log_body", "volume_change")
CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
OUTPUT_COLUMNS = (
    "last_open_time",
    "forecast_open_time",
    "horizon_hours",
    "last_close",
    "log_return",
    "price",
)
HOUR_MS = 3_600_000
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")


@dataclass(frozen=True)
class ForecastState:
    window_hours: int
    horizon_hours: int
    mean: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]
    target_mean: float
    target_std: float


def _bad_state(message: str) -> DriftwoodModelError:
    return DriftwoodModelError("MODEL_INVALID", f"{STATE_FILE}: {message}")


def parse_forecast_state(raw: Any) -> ForecastState:
    """The fitted scaling, refused as tasks/src/forecast/state.ts `parseForecastState` refuses it."""
    if not isinstance(raw, dict):
        raise _bad_state("expected an object")
    if raw.get("kind") != "time_windows" or raw.get("version") != 1:
        raise _bad_state(f"unknown kind/version {raw.get('kind')}/{raw.get('version')}")
    if tuple(raw.get("features") or ()) != WINDOW_FEATURES:
        raise _bad_state(f"features {raw.get('features')} differ from {list(WINDOW_FEATURES)}")
    for key in ("windowHours", "horizonHours"):
        if not isinstance(raw.get(key), int) or raw[key] < 1:
            raise _bad_state(f"{key} must be a positive whole number")
    arrays = {}
    for key in ("mean", "std"):
        values = raw.get(key)
        if not isinstance(values, list) or len(values) != len(WINDOW_FEATURES):
            raise _bad_state(f"{key} must hold {len(WINDOW_FEATURES)} finite numbers")
        arrays[key] = np.asarray(values, dtype=np.float64)
        if not np.isfinite(arrays[key]).all():
            raise _bad_state(f"{key} must hold {len(WINDOW_FEATURES)} finite numbers")
    if not (arrays["std"] > 0).all():
        raise _bad_state("std must be positive")
    target = raw.get("target")
    if (
        not isinstance(target, dict)
        or not np.isfinite(target.get("mean", np.nan))
        or not target.get("std", 0) > 0
    ):
        raise _bad_state("target scaling is missing or invalid")
    return ForecastState(
        raw["windowHours"],
        raw["horizonHours"],
        arrays["mean"],
        arrays["std"],
        float(target["mean"]),
        float(target["std"]),
    )


def _schema_error(message: str) -> DriftwoodModelError:
    return DriftwoodModelError("SCHEMA_MISMATCH", message)


def _open_times(column: pd.Series) -> npt.NDArray[np.int64]:
    """Epoch milliseconds from epoch-ms numbers, ISO times (as the API takes) or pandas datetimes."""
    if pd.api.types.is_datetime64_any_dtype(column):
        utc = column.dt.tz_convert("UTC") if column.dt.tz is not None else column.dt.tz_localize("UTC")
        return (utc - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    out = np.empty(len(column), dtype=np.int64)
    for i, raw in enumerate(column.tolist()):
        if isinstance(raw, str) and ISO_TIME.match(raw):
            stamp = pd.Timestamp(raw)
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            out[i] = (stamp - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        elif (
            isinstance(raw, (int, float, np.integer, np.floating))
            and not isinstance(raw, bool)
            and np.isfinite(raw)
        ):
            if float(raw) != int(raw):
                raise _schema_error(f"row {i}, open_time: expected whole epoch milliseconds, got {raw!r}")
            out[i] = int(raw)
        else:
            raise _schema_error(
                f"row {i}, open_time: expected an ISO time or epoch milliseconds, got {raw!r}"
            )
    return out


def read_candles(frame: pd.DataFrame, min_rows: int) -> dict[str, npt.NDArray[Any]]:
    """The frame's candles, checked by the API's rules (tasks/src/forecast/candles.ts): on the hour,
    positive prices with low ≤ open, close ≤ high, volume ≥ 0, consecutive hours in ascending order,
    at least `min_rows` of them. The error names the row and column."""
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise _schema_error(f"missing columns {missing}: a forecast takes {list(CANDLE_COLUMNS)}")
    if len(frame) < min_rows:
        raise _schema_error(f"expected at least {min_rows} consecutive hourly candles, got {len(frame)}")
    times = _open_times(frame["open_time"])
    values: dict[str, npt.NDArray[Any]] = {"open_time": times}
    for col in (*PRICE_COLUMNS, "volume"):
        numbers = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(numbers) | ((numbers <= 0) if col != "volume" else (numbers < 0))
        if bad.any():
            i = int(np.argmax(bad))
            kind = "non-negative" if col == "volume" else "positive"
            raise _schema_error(f"row {i}, {col}: expected a {kind} number, got {frame[col].iloc[i]!r}")
        values[col] = numbers
    o, h, lo, c = (values[k] for k in PRICE_COLUMNS)
    rules = (
        ("open_time", times % HOUR_MS != 0, "is not on the hour"),
        ("high", h < lo, "is below low"),
        ("open", (o < lo) | (o > h), "is outside [low, high]"),
        ("close", (c < lo) | (c > h), "is outside [low, high]"),
    )
    for col, broken, detail in rules:
        if broken.any():
            i = int(np.argmax(broken))
            raise _schema_error(f"row {i}, {col}: {col} {frame[col].iloc[i]!r} {detail}")
    steps = np.diff(times)
    if (steps != HOUR_MS).any():
        i = int(np.argmax(steps != HOUR_MS)) + 1
        order = (
            "candles must be in ascending time order" if steps[i - 1] <= 0 else "expected consecutive hours"
        )
        raise _schema_error(f"row {i}, open_time: {order} (one hour after row {i - 1})")
    return values


def _iso(ms: npt.NDArray[np.int64]) -> list[str]:
    """As JavaScript's toISOString writes a time: 2026-03-01T00:00:00.000Z."""
    return [f"{s}Z" for s in np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")]


@dataclass(frozen=True)
class ForecastModel:
    state: ForecastState
    lstm: LstmRegressor
    kind: str = "lstm"

    def windows(self, candles: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.float32]:
        """The scaled windows, one per candle with window_hours candles before it: scaleInputs of the
        windowInputs of tasks/src/forecast (features stored as float32, scaled in float64, stored as
        float32)."""
        c, o, h, lo, v = (candles[k] for k in ("close", "open", "high", "low", "volume"))
        rows = np.stack(
            [
                np.log(c[1:] / c[:-1]),
                np.log(h[1:] / lo[1:]),
                np.log(c[1:] / o[1:]),
                np.log((v[1:] + 1) / (v[:-1] + 1)),
            ],
            axis=1,
        ).astype(np.float32)
        scaled = ((rows.astype(np.float64) - self.state.mean) / self.state.std).astype(np.float32)
        # Window k reads feature rows k .. k + window_hours - 1 (candles k .. k + window_hours).
        view = np.lib.stride_tricks.sliding_window_view(scaled, self.state.window_hours, axis=0)
        return np.ascontiguousarray(view.transpose(0, 2, 1))

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Forecasts for each candle that has window_hours candles before it in the frame: the fields of
        the API's `forecast` object. The last row is what `POST /v1/forecast` answers for these candles."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        candles = read_candles(frame, self.state.window_hours + 1)
        z = self.lstm.outputs(self.windows(candles)).astype(np.float64)
        log_return = z * self.state.target_std + self.state.target_mean
        last = slice(self.state.window_hours, None)
        last_time, last_close = candles["open_time"][last], candles["close"][last]
        return pd.DataFrame(
            {
                "last_open_time": _iso(last_time),
                "forecast_open_time": _iso(last_time + self.state.horizon_hours * HOUR_MS),
                "horizon_hours": np.full(len(z), self.state.horizon_hours, dtype=np.int64),
                "last_close": last_close,
                "log_return": log_return,
                "price": last_close * np.exp(log_return),
            },
            columns=list(OUTPUT_COLUMNS),
        )


def _check_sample(model: ForecastModel, folder: Path) -> None:
    path = folder / SAMPLE_FILE
    if not path.exists():
        return
    sample = json.loads(path.read_text(encoding="utf-8"))
    want = sample.get("log_returns") if isinstance(sample, dict) else None
    if not isinstance(sample, dict) or sample.get("format") != SAMPLE_FORMAT or not isinstance(want, list):
        raise DriftwoodModelError(
            "MODEL_INVALID", f"{path}: expected format {SAMPLE_FORMAT} with log_returns"
        )
    got = model.predict(pd.DataFrame(sample.get("candles")))["log_return"].to_numpy()
    if len(got) != len(want):
        raise DriftwoodModelError("MODEL_INVALID", f"{path}: {len(got)} windows but {len(want)} log_returns")
    require_sample_match(got, want, "sample windows", "window")


def load_forecast(folder: Path) -> ForecastModel:
    """A forecast version's folder (forecast_state.json, model.json, weights.bin) ready to score."""
    try:
        state = parse_forecast_state(json.loads((folder / STATE_FILE).read_text(encoding="utf-8")))
        model_json = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DriftwoodModelError("MODEL_INVALID", f"{folder}: a JSON file is not valid ({err})") from None
    try:
        weights = (folder / WEIGHTS_FILE).read_bytes()
    except FileNotFoundError:
        raise DriftwoodModelError("MODEL_INVALID", f"{folder / WEIGHTS_FILE} is missing") from None
    lstm = parse_lstm(model_json, weights)
    if lstm.features != len(WINDOW_FEATURES):
        raise DriftwoodModelError(
            "MODEL_INVALID",
            f"{folder}: the model takes {lstm.features} features per hour, "
            f"the state describes {len(WINDOW_FEATURES)}",
        )
    model = ForecastModel(state, lstm)
    _check_sample(model, folder)
    return model
