"""scikit-learn baselines for bench/train: the same matrices as Driftwood's TF.js models.

Prints a JSON list of {model, rocAuc, fitSeconds, note} on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier


def load(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    doc = json.loads((folder / f"{name}.json").read_text())
    x = np.asarray(doc["x"], dtype=np.float64).reshape(-1, doc["width"])
    return x, np.asarray(doc["y"], dtype=np.int64)


def main(folder: Path, l2: float) -> None:
    x_train, y_train = load(folder, "train")
    x_hold, y_hold = load(folder, "holdout")
    # The same training rows as Driftwood's models (the validation rows only steer their stopping).
    x_fit, y_fit = x_train, y_train
    # TF.js adds l2·Σw² to the mean loss; scikit-learn minimises ½‖w‖² + C·Σ loss, the same
    # objective when C = 1 / (2·l2·n).
    c = 1.0 / (2.0 * l2 * len(y_fit))
    out = []
    models = [
        (
            "sklearn LogisticRegression",
            LogisticRegression(class_weight="balanced", C=c, max_iter=2000),
            f"lbfgs, balanced class weights, C={c:.3f} (= the same L2)",
        ),
        (
            "sklearn MLPClassifier(16)",
            MLPClassifier(hidden_layer_sizes=(16,), alpha=0.001, random_state=7, max_iter=40),
            "adam, 40 epochs, no class weights (not supported)",
        ),
    ]
    for name, model, note in models:
        t0 = time.perf_counter()
        model.fit(x_fit, y_fit)
        seconds = time.perf_counter() - t0
        auc = roc_auc_score(y_hold, model.predict_proba(x_hold)[:, 1])
        out.append({"model": name, "rocAuc": float(auc), "fitSeconds": seconds, "note": note})
    print(json.dumps(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]), float(sys.argv[2]))
