"""A TF.js layers model of Dense layers (`model.json` + `weights.bin`) scored with numpy.

The computation of tasks/src/models/dense-fast-path.ts, the path Driftwood's API scores with: float32
weights and inputs, each unit's sum and activation in float64, each layer's output stored as float32.
Only Dense layers (and Dropout and InputLayer, which do nothing at inference) are supported; the
models Driftwood trains (logistic regression, MLP) are made of nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import DriftwoodModelError

MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.bin"

Matrix = npt.NDArray[np.float64]


def _sigmoid(s: Matrix) -> Matrix:
    # As the fast path writes it, 1 / (1 + exp(-s)): a very negative sum overflows exp(-s) to inf, giving 0.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-s))


ACTIVATIONS: dict[str, Callable[[Matrix], Matrix]] = {
    "linear": lambda s: s,
    "relu": lambda s: np.maximum(s, 0.0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
}
IGNORED_LAYERS = {"InputLayer", "Dropout"}


@dataclass(frozen=True)
class DenseLayer:
    name: str
    kernel: npt.NDArray[np.float64]  # [inputs, units], float32 values held as float64
    bias: npt.NDArray[np.float64]
    activation: str


@dataclass(frozen=True)
class DenseChain:
    layers: tuple[DenseLayer, ...]

    @property
    def width(self) -> int:
        return int(self.layers[0].kernel.shape[0])

    def scores(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """The model's output for each row of x (float32 values, returned as float64)."""
        current = x
        for layer in self.layers:
            total = current.astype(np.float64) @ layer.kernel + layer.bias
            current = ACTIVATIONS[layer.activation](total).astype(np.float32)
        return current[:, 0].astype(np.float64)


def _bad(message: str) -> DriftwoodModelError:
    return DriftwoodModelError("MODEL_INVALID", f"{MODEL_FILE}: {message}")


def _layer_configs(topology: Any) -> list[dict[str, Any]]:
    if not isinstance(topology, dict):
        raise _bad("modelTopology is not an object")
    model = topology.get("model_config", topology)
    if not isinstance(model, dict) or model.get("class_name") != "Sequential":
        kind = model.get("class_name") if isinstance(model, dict) else model
        raise _bad(f"expected a Sequential model, got {kind!r}")
    config = model.get("config")
    layers = config.get("layers") if isinstance(config, dict) else config
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        raise _bad("the Sequential model has no list of layers")
    return layers


def _read_weights(manifest: Any, weights: bytes) -> dict[str, npt.NDArray[np.float32]]:
    """The weights by name: the manifest lists them in the order their bytes follow each other."""
    if not isinstance(manifest, list):
        raise _bad("weightsManifest is not a list")
    arrays: dict[str, npt.NDArray[np.float32]] = {}
    offset = 0
    for group in manifest:
        for spec in group.get("weights", []) if isinstance(group, dict) else []:
            name, shape, dtype = spec.get("name"), spec.get("shape"), spec.get("dtype")
            if dtype != "float32" or "quantization" in spec:
                raise _bad(
                    f"weight {name}: expected plain float32, got {dtype} {spec.get('quantization', '')}"
                )
            count = int(np.prod(shape)) if shape else 1
            end = offset + 4 * count
            if end > len(weights):
                raise DriftwoodModelError(
                    "MODEL_INVALID", f"{WEIGHTS_FILE}: {len(weights)} bytes, but weight {name} ends at {end}"
                )
            arrays[name] = np.frombuffer(weights, dtype="<f4", count=count, offset=offset).reshape(shape)
            offset = end
    if offset != len(weights):
        raise DriftwoodModelError(
            "MODEL_INVALID", f"{WEIGHTS_FILE}: {len(weights)} bytes, but the manifest describes {offset}"
        )
    return arrays


def parse_dense_chain(model_json: object, weights: bytes) -> DenseChain:
    if not isinstance(model_json, dict):
        raise _bad("expected a JSON object")
    arrays = _read_weights(model_json.get("weightsManifest"), weights)
    layers: list[DenseLayer] = []
    for i, entry in enumerate(_layer_configs(model_json.get("modelTopology"))):
        kind = entry.get("class_name")
        if kind in IGNORED_LAYERS:
            continue
        config = entry.get("config") or {}
        name = config.get("name", f"layer {i}")
        if kind != "Dense":
            raise _bad(f"layer {name} is a {kind}: only Dense layers can be scored without TensorFlow")
        activation = config.get("activation") or "linear"
        if activation not in ACTIVATIONS:
            raise _bad(f"layer {name}: activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
        kernel = arrays.get(f"{name}/kernel")
        if kernel is None or kernel.ndim != 2:
            raise _bad(f"layer {name}: no 2-D weight {name}/kernel in the manifest")
        units = kernel.shape[1]
        bias = arrays.get(f"{name}/bias") if config.get("use_bias", True) else None
        if bias is None:
            bias = np.zeros(units, dtype=np.float32)
        if bias.shape != (units,):
            raise _bad(f"layer {name}: bias shape {bias.shape} does not match {units} units")
        if layers and layers[-1].kernel.shape[1] != kernel.shape[0]:
            given = layers[-1].kernel.shape[1]
            raise _bad(f"layer {name} takes {kernel.shape[0]} inputs, the layer before gives {given}")
        layers.append(DenseLayer(name, kernel.astype(np.float64), bias.astype(np.float64), activation))
    if not layers:
        raise _bad("the model has no Dense layer")
    if layers[-1].kernel.shape[1] != 1:
        raise _bad(f"the last layer has {layers[-1].kernel.shape[1]} units; a classifier's has 1")
    return DenseChain(tuple(layers))


def load_dense_chain(folder: Path) -> DenseChain:
    try:
        model_json = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise _bad(f"not valid JSON ({err})") from None
    try:
        weights = (folder / WEIGHTS_FILE).read_bytes()
    except FileNotFoundError:
        raise DriftwoodModelError("MODEL_INVALID", f"{folder / WEIGHTS_FILE} is missing") from None
    return parse_dense_chain(model_json, weights)
