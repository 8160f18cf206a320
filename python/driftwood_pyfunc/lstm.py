"""A TF.js layers model of one LSTM layer and a Dense output (`model.json` + `weights.bin`), in numpy.

The forecast model Driftwood trains (tasks/src/forecast/lstm.ts) is `lstm` (units u, the last step's
output only) then `dense` (1 unit, linear). Its weights are read from `weights.bin` through the
manifest in `model.json`, as TF.js saves them: little-endian float32, one after another in manifest
order, each named `<layer>/<weight>`:

- `<lstm>/kernel` [features, 4u] and `<lstm>/recurrent_kernel` [u, 4u]: the input and recurrent
  weights of the four gates side by side in Keras' order: input, forget, cell, output;
- `<lstm>/bias` [4u], in the same order;
- `<dense>/kernel` [u, 1] and `<dense>/bias` [1].

The step is tfjs-layers' LSTMCell (implementation 2): z = x·W + h·U + b, i = rec(z_i), f = rec(z_f),
c = f·c + i·act(z_c), o = rec(z_o), h = o·act(c), with act the layer's `activation` (tanh) and rec its
`recurrent_activation` (TF.js's default, hard sigmoid: clip(0.2·x + 0.5, 0, 1)). Each element-wise
operation is done in float32 as TF.js does it; the two products are summed in float64 and rounded
to float32, where TF.js sums in float32 in its own order: that, and TF.js's own tanh, is the whole
difference (the scaled output agrees to about 1e-7, docs/pyfunc.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .dense import MODEL_FILE, _layer_configs, _read_weights
from .errors import DriftwoodModelError

F32 = npt.NDArray[np.float32]


def _hard_sigmoid(x: F32) -> F32:
    # tfjs-layers' hardSigmoid: add(0.5, mul(0.2, x)), then clip to [0, 1], each in float32.
    return np.clip(np.float32(0.2) * x + np.float32(0.5), np.float32(0), np.float32(1))


def _sigmoid(x: F32) -> F32:
    with np.errstate(over="ignore"):
        return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


ACTIVATIONS: dict[str, Callable[[F32], F32]] = {
    "tanh": lambda x: np.tanh(x).astype(np.float32),
    "hard_sigmoid": _hard_sigmoid,
    "sigmoid": _sigmoid,
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, np.float32(0)),
}


def _bad(message: str) -> DriftwoodModelError:
    return DriftwoodModelError("MODEL_INVALID", f"{MODEL_FILE}: {message}")


@dataclass(frozen=True)
class LstmRegressor:
    kernel: F32  # [features, 4u]
    recurrent: F32  # [u, 4u]
    bias: F32  # [4u]
    activation: str
    recurrent_activation: str
    out_kernel: F32  # [u, 1]
    out_bias: F32  # [1]

    @property
    def units(self) -> int:
        return int(self.recurrent.shape[0])

    @property
    def features(self) -> int:
        return int(self.kernel.shape[0])

    def outputs(self, x: F32) -> F32:
        """The model's output for each window of x ([windows, hours, features], float32)."""
        n, hours, _ = x.shape
        u = self.units
        act, rec = ACTIVATIONS[self.activation], ACTIVATIONS[self.recurrent_activation]
        kernel, recurrent = self.kernel.astype(np.float64), self.recurrent.astype(np.float64)
        h = np.zeros((n, u), dtype=np.float32)
        c = np.zeros((n, u), dtype=np.float32)
        for t in range(hours):
            zx = (x[:, t, :].astype(np.float64) @ kernel).astype(np.float32)
            zh = (h.astype(np.float64) @ recurrent).astype(np.float32)
            z = zx + zh + self.bias
            i = rec(z[:, :u])
            f = rec(z[:, u : 2 * u])
            c = f * c + i * act(z[:, 2 * u : 3 * u])
            o = rec(z[:, 3 * u :])
            h = o * act(c)
        out = (h.astype(np.float64) @ self.out_kernel.astype(np.float64)).astype(np.float32) + self.out_bias
        return out[:, 0]


def _weight(arrays: dict[str, F32], name: str, shape: tuple[int, ...]) -> F32:
    w = arrays.get(name)
    if w is None or w.shape != shape:
        raise _bad(
            f"expected weight {name} of shape {list(shape)}, got {None if w is None else list(w.shape)}"
        )
    return w


def parse_lstm(model_json: Any, weights: bytes) -> LstmRegressor:
    """The LSTM + Dense model of a forecast version, refusing any other architecture by name."""
    if not isinstance(model_json, dict):
        raise _bad("expected a JSON object")
    arrays = _read_weights(model_json.get("weightsManifest"), weights)
    layers = [
        e for e in _layer_configs(model_json.get("modelTopology")) if e.get("class_name") != "InputLayer"
    ]
    kinds = [e.get("class_name") for e in layers]
    if kinds != ["LSTM", "Dense"]:
        raise _bad(f"expected layers LSTM then Dense (a Driftwood forecast model), got {kinds}")
    lstm, dense = (e.get("config") or {} for e in layers)
    for key, want in (("return_sequences", False), ("go_backwards", False), ("stateful", False)):
        if bool(lstm.get(key, False)) != want:
            raise _bad(f"layer {lstm.get('name')}: {key} must be {want}")
    activation = lstm.get("activation") or "tanh"
    recurrent_activation = lstm.get("recurrent_activation") or "hard_sigmoid"
    for what, name in (("activation", activation), ("recurrent_activation", recurrent_activation)):
        if name not in ACTIVATIONS:
            raise _bad(f"layer {lstm.get('name')}: {what} {name!r} is not one of {', '.join(ACTIVATIONS)}")
    if (dense.get("activation") or "linear") != "linear" or dense.get("units") != 1:
        raise _bad(f"layer {dense.get('name')}: expected 1 linear unit")
    units = int(lstm.get("units") or 0)
    lname, dname = lstm.get("name"), dense.get("name")
    kernel = arrays.get(f"{lname}/kernel")
    if kernel is None or kernel.ndim != 2:
        raise _bad(f"layer {lname}: no 2-D weight {lname}/kernel in the manifest")
    features = int(kernel.shape[0])
    zeros4 = np.zeros(4 * units, dtype=np.float32)
    return LstmRegressor(
        kernel=_weight(arrays, f"{lname}/kernel", (features, 4 * units)),
        recurrent=_weight(arrays, f"{lname}/recurrent_kernel", (units, 4 * units)),
        bias=_weight(arrays, f"{lname}/bias", (4 * units,)) if lstm.get("use_bias", True) else zeros4,
        activation=activation,
        recurrent_activation=recurrent_activation,
        out_kernel=_weight(arrays, f"{dname}/kernel", (units, 1)),
        out_bias=_weight(arrays, f"{dname}/bias", (1,))
        if dense.get("use_bias", True)
        else np.zeros(1, dtype=np.float32),
    )
