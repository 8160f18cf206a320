"""The ONNX alternative, measured: a Driftwood version's model (Dense layers or trees) exported as an
ONNX graph and run by onnxruntime, against driftwood_pyfunc's numpy scorer on the same transformed
rows (the version's serving sample repeated). Prints the largest probability difference and rows/s.
The transform and calibration stay in numpy either way: only the model is compared.

    uv venv /tmp/onnx-venv --python .venvs/mlflow/bin/python
    VIRTUAL_ENV=/tmp/onnx-venv uv pip install onnx==1.23.2 onnxruntime==1.31.1 numpy==2.4.6 pandas==3.1.1
    PYTHONPATH=python /tmp/onnx-venv/bin/python bench/pyfunc/onnx_compare.py <model folder> [rows]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import driftwood_pyfunc
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from driftwood_pyfunc.dense import DenseChain
from driftwood_pyfunc.gbdt import Trees
from onnx import TensorProto, helper, numpy_helper

# onnx 1.23 writes IR 14 by default; onnxruntime 1.31 reads up to 13.
IR_VERSION = 10
ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}


def dense_graph(chain: DenseChain) -> onnx.ModelProto:
    nodes, inits, current = [], [], "x"
    for k, layer in enumerate(chain.layers):
        inits += [
            numpy_helper.from_array(layer.kernel.astype(np.float32), f"w{k}"),
            numpy_helper.from_array(layer.bias.astype(np.float32), f"b{k}"),
        ]
        nodes += [helper.make_node("MatMul", [current, f"w{k}"], [f"m{k}"])]
        nodes += [helper.make_node("Add", [f"m{k}", f"b{k}"], [f"s{k}"])]
        current = f"s{k}"
        if layer.activation in ACTIVATIONS:
            nodes += [helper.make_node(ACTIVATIONS[layer.activation], [current], [f"a{k}"])]
            current = f"a{k}"
    graph = helper.make_graph(
        nodes,
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, chain.width])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, [None, 1])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=IR_VERSION)


def trees_graph(trees: Trees, double: bool) -> onnx.ModelProto:
    """TreeEnsembleRegressor (ai.onnx.ml 3): float32 thresholds and leaves, or the *_as_tensor
    double form; the margin, before the sigmoid."""
    a: dict[str, list[Any]] = {k: [] for k in ("tid", "nid", "fid", "thr", "mode", "t", "f", "miss")}
    targets: dict[str, list[Any]] = {"tid": [], "nid": [], "w": []}
    for t, tree in enumerate(trees.trees):
        for i in range(len(tree.feature)):
            leaf = tree.left[i] == i and tree.right[i] == i
            a["tid"].append(t)
            a["nid"].append(i)
            a["fid"].append(0 if leaf else int(tree.feature[i]))
            a["thr"].append(0.0 if leaf else float(tree.threshold[i]))
            a["mode"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["t"].append(0 if leaf else int(tree.left[i]))
            a["f"].append(0 if leaf else int(tree.right[i]))
            a["miss"].append(0 if leaf else int(tree.missing_left[i]))
            if leaf:
                targets["tid"].append(t)
                targets["nid"].append(i)
                targets["w"].append(float(tree.value[i]))
    kind = TensorProto.DOUBLE if double else TensorProto.FLOAT
    attrs: dict[str, Any] = {
        "n_targets": 1,
        "nodes_treeids": a["tid"],
        "nodes_nodeids": a["nid"],
        "nodes_featureids": a["fid"],
        "nodes_modes": a["mode"],
        "nodes_truenodeids": a["t"],
        "nodes_falsenodeids": a["f"],
        "nodes_missing_value_tracks_true": a["miss"],
        "target_treeids": targets["tid"],
        "target_nodeids": targets["nid"],
        "target_ids": [0] * len(targets["tid"]),
        "aggregate_function": "SUM",
        "post_transform": "NONE",
    }
    if double:
        attrs["nodes_values_as_tensor"] = helper.make_tensor("thr", kind, [len(a["thr"])], a["thr"])
        attrs["target_weights_as_tensor"] = helper.make_tensor("w", kind, [len(targets["w"])], targets["w"])
        attrs["base_values_as_tensor"] = helper.make_tensor("base", kind, [1], [trees.base_score])
    else:
        attrs["nodes_values"] = a["thr"]
        attrs["target_weights"] = targets["w"]
        attrs["base_values"] = [trees.base_score]
    node = helper.make_node("TreeEnsembleRegressor", ["x"], ["y"], domain="ai.onnx.ml", **attrs)
    graph = helper.make_graph(
        [node],
        "trees",
        [helper.make_tensor_value_info("x", kind, [None, trees.width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
        ir_version=IR_VERSION,
    )


def best_of_three(run: Any) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(3):
        t0 = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    folder = Path(sys.argv[1])
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    model = driftwood_pyfunc.load(folder)
    sample = json.loads((folder / "serving-sample.json").read_text())["rows"]
    frame = pd.DataFrame([sample[i % len(sample)] for i in range(rows)])
    x = model.vectors(frame)
    numpy_s, want = best_of_three(lambda: model.scorer.scores(x))
    print("| model | rows | numpy rows/s | onnxruntime rows/s | largest probability difference |")
    print("|---|---:|---:|---:|---:|")
    variants: list[tuple[str, onnx.ModelProto, np.ndarray]] = []
    if isinstance(model.scorer, Trees):
        variants.append(("trees, float32 thresholds", trees_graph(model.scorer, False), x))
        variants.append(("trees, float64 thresholds", trees_graph(model.scorer, True), x.astype(np.float64)))
    else:
        variants.append((f"dense {len(model.scorer.layers)} layer(s)", dense_graph(model.scorer), x))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    for name, graph, inputs in variants:
        session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
        ort_s, out = best_of_three(lambda s=session, i=inputs: s.run(None, {"x": i})[0][:, 0])
        got = out.astype(np.float64)
        if isinstance(model.scorer, Trees):
            got = driftwood_pyfunc.gbdt.sigmoid(got)
        diff = float(np.max(np.abs(got - want)))
        print(f"| {name} | {rows:,} | {rows / numpy_s:,.0f} | {rows / ort_s:,.0f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
