"""LightGBM and scikit-learn HistGradientBoostingClassifier on the rows bench/gbdt/run.mjs wrote.

Single-threaded (run.mjs sets OMP_NUM_THREADS=1), as Driftwood's fit is: the per-core comparison.
Arguments: folder width [native_width categorical_indices]. With the last two, both also fit the
native matrix (nx, nhx) with those columns declared categorical.
"""

import os
import sys
import time

import lightgbm
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

folder, width = sys.argv[1], int(sys.argv[2])
native_width = int(sys.argv[3]) if len(sys.argv) > 4 else 0
categorical = [int(c) for c in sys.argv[4].split(",")] if native_width else []


def load(name: str) -> np.ndarray:
    return np.fromfile(os.path.join(folder, f"{name}.f32"), dtype=np.float32)


y, hy = load("y").astype(np.int64), load("hy").astype(np.int64)
inputs = {"": (load("x").reshape(-1, width), load("hx").reshape(-1, width))}
if native_width:
    inputs = {
        ", one-hot": inputs[""],
        ", native": (load("nx").reshape(-1, native_width), load("nhx").reshape(-1, native_width)),
    }
threads = 1


def lgbm(native: bool) -> lightgbm.LGBMClassifier:
    return lightgbm.LGBMClassifier(
        n_estimators=100,
        learning_rate=0.1,
        num_leaves=31,
        min_child_samples=20,
        reg_lambda=0.0,
        max_bin=255,
        verbose=-1,
        n_jobs=threads,
    )


def hgb(native: bool) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=31,
        min_samples_leaf=20,
        l2_regularization=0.0,
        max_bins=255,
        early_stopping=False,
        categorical_features=categorical if native else None,
    )


for label, (x, hx) in inputs.items():
    native = label == ", native"
    for name, make in {"lightgbm": lgbm, "sklearn-hgb": hgb}.items():
        times, cpu = [], []
        for _ in range(3):
            m = make(native)
            t0, c0 = time.perf_counter(), time.process_time()
            if name == "lightgbm" and native:
                m.fit(x, y, categorical_feature=categorical)
            else:
                m.fit(x, y)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        auc = roc_auc_score(hy, m.predict_proba(hx)[:, 1])
        wall = " ".join(f"{t:.2f}" for t in times)
        cpu_s = " ".join(f"{t:.2f}" for t in cpu)
        size = f"{len(y)}x{x.shape[1]}, {threads} thread"
        print(f"{name + label:<21} {size}: fit s {wall} (CPU s {cpu_s}), holdout ROC AUC {auc:.4f}")
