"""scikit-learn baselines for bench/train: the same matrices as Driftwood's TF.js models.

Prints a JSON list of {model, rocAuc, fitSeconds, note} on stdout. The LogisticRegression row also
carries its coefficients and intercept, and those of a second, untimed fit to a tight tolerance
(`tight`): the default tol=1e-4 stops lbfgs short of the optimum on ill-conditioned one-hot columns.
With `--large FILE N WIDTH L2`, fits LogisticRegression on the float32 rows of FILE (N rows of
WIDTH values, then N labels) and prints the same for it.
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
        row: dict[str, object] = {"model": name, "rocAuc": float(auc), "fitSeconds": seconds, "note": note}
        if isinstance(model, LogisticRegression):
            row.update(coefficients(model, x_fit, y_fit))
        out.append(row)
    print(json.dumps(out))


def coefficients(model: LogisticRegression, x: np.ndarray, y: np.ndarray) -> dict[str, object]:
    tight = LogisticRegression(class_weight=model.class_weight, C=model.C, tol=1e-12, max_iter=100_000).fit(
        x, y
    )
    return {
        "coef": model.coef_[0].tolist(),
        "intercept": float(model.intercept_[0]),
        "tight": {"coef": tight.coef_[0].tolist(), "intercept": float(tight.intercept_[0])},
    }


def large(file: Path, n: int, width: int, l2: float) -> None:
    raw = np.fromfile(file, dtype=np.float32)
    x = raw[: n * width].astype(np.float64).reshape(n, width)
    y = raw[n * width :].astype(np.int64)
    model = LogisticRegression(class_weight="balanced", C=1.0 / (2.0 * l2 * n), max_iter=2000)
    t0 = time.perf_counter()
    model.fit(x, y)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "fitSeconds": seconds,
                "iterations": int(model.n_iter_[0]),
                **coefficients(model, x, y),
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "--large":
        large(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    else:
        main(Path(sys.argv[1]), float(sys.argv[2]))
