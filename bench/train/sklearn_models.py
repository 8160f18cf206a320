"""Reference models for bench/train, fitted on the very matrices Driftwood's models were fitted on.

Usage: python sklearn_models.py DIR. DIR holds meta.json (written by bench/train/prepare.ts) and, per
input family (linear, tree, native), part (train, validation, holdout) and x or y, a raw float32 file
`<family>.<part>.<x|y>.f32` (row-major, meta.json gives the width). One process per dataset.

Fits, each timed alone (the fit call only: wall seconds, and CPU seconds over all threads):
- scikit-learn LogisticRegression on the linear inputs, lbfgs, balanced class weights and
  C = 1 / (2·l2·n), the same penalised objective as Driftwood's logistic regression (`sklearnC` in
  tasks/src/models/logistic-exact.ts);
- scikit-learn HistGradientBoostingClassifier and LightGBM on the tree inputs (raw values, NaN for
  missing), their defaults, early-stopped on the validation rows (HGB: X_val/y_val, 10 rounds, on the
  loss; LightGBM: eval_X/eval_y with early_stopping(10) on binary log loss);
- the same two with native categorical columns, when the dataset has a native family.

Writes each model's holdout probabilities to `pred.<slug>.f32` in DIR and prints a JSON list of
{model, family, fitSeconds, cpuSeconds, weighted, note, predictions} on stdout; the metrics are
computed by the caller, by the same code for every model. With `coefficients` in meta.json, the
LogisticRegression row also carries its coefficients and those of an untimed refit to tol 1e-12
(`tight`): the default tol=1e-4 stops lbfgs short of the optimum on ill-conditioned one-hot columns.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

PARTS = ("train", "validation", "holdout")


def load(folder: Path, family: str, width: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for part in PARTS:
        x = np.fromfile(folder / f"{family}.{part}.x.f32", dtype=np.float32).reshape(-1, width)
        y = np.fromfile(folder / f"{family}.{part}.y.f32", dtype=np.float32).astype(np.int64)
        out[part] = (x, y)
    return out


def sklearn_c(l2: float, n: int) -> float:
    return 1.0 / (2.0 * l2 * n) if l2 > 0 else float("inf")


def timed(fit: Callable[..., object], *args: object, **kwargs: object) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of the process) of one fit call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fit(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu


def main(folder: Path) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    threads = int(meta["threads"])
    data = {name: load(folder, name, fam["width"]) for name, fam in meta["families"].items()}
    rows: list[dict[str, object]] = []

    def record(
        model: str, family: str, fitted: ClassifierMixin, took: tuple[float, float], weighted: bool, note: str
    ) -> dict[str, object]:
        x_hold, _ = data[family]["holdout"]
        slug = re.sub(r"[^a-z0-9]+", "-", f"{model} {family}".lower()).strip("-")
        fitted.predict_proba(x_hold)[:, 1].astype(np.float32).tofile(folder / f"pred.{slug}.f32")
        row: dict[str, object] = {
            "model": model,
            "family": family,
            "fitSeconds": took[0],
            "cpuSeconds": took[1],
            "weighted": weighted,
            "note": note,
            "predictions": f"pred.{slug}.f32",
        }
        rows.append(row)
        return row

    # Logistic regression: linear inputs, the same objective as Driftwood's (l2 → C).
    x, y = data["linear"]["train"]
    x64 = x.astype(np.float64)
    c = sklearn_c(float(meta["l2"]), len(y))
    lr = LogisticRegression(class_weight="balanced", C=c, max_iter=5000)
    took = timed(lr.fit, x64, y)
    row = record(
        "sklearn LogisticRegression",
        "linear",
        lr,
        took,
        True,
        f"lbfgs, balanced, C={c:.4g} (= l2 {meta['l2']}); {int(lr.n_iter_[0])} iterations",
    )
    if meta.get("coefficients"):
        tight = LogisticRegression(class_weight="balanced", C=c, tol=1e-12, max_iter=100_000).fit(x64, y)
        row["coef"] = lr.coef_[0].tolist()
        row["intercept"] = float(lr.intercept_[0])
        row["tight"] = {"coef": tight.coef_[0].tolist(), "intercept": float(tight.intercept_[0])}

    # Boosted trees: defaults, early-stopped on the validation rows.
    native = meta["families"].get("native", {}).get("categorical")
    for family, categorical in (("tree", None), ("native", native)):
        if family not in data:
            continue
        x, y = data[family]["train"]
        xv, yv = data[family]["validation"]
        suffix = " native cat." if categorical else ""
        hgb = HistGradientBoostingClassifier(
            early_stopping=True, **({"categorical_features": categorical} if categorical else {})
        )
        took = timed(hgb.fit, x, y, X_val=xv, y_val=yv)
        record(
            f"sklearn HistGradientBoosting{suffix}",
            family,
            hgb,
            took,
            False,
            f"defaults, stops after 10 rounds without a better validation loss; {hgb.n_iter_} iterations",
        )
        gbm = lgb.LGBMClassifier(n_jobs=threads, verbose=-1)
        took = timed(
            gbm.fit,
            x,
            y,
            eval_X=(xv,),
            eval_y=(yv,),
            callbacks=[lgb.early_stopping(10, verbose=False)],
            **({"categorical_feature": categorical} if categorical else {}),
        )
        record(
            f"LightGBM{suffix}",
            family,
            gbm,
            took,
            False,
            f"defaults, early_stopping(10) on validation log loss; best iteration {gbm.best_iteration_}",
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
