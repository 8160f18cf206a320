"""LightGBM and scikit-learn HistGradientBoostingClassifier on the rows bench/gbdt/run.mjs wrote.

Single-threaded (run.mjs sets OMP_NUM_THREADS=1), as Driftwood's fit is: the per-core comparison.
"""

import os
import sys
import time

import lightgbm
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

folder, width = sys.argv[1], int(sys.argv[2])


def load(name: str) -> np.ndarray:
    return np.fromfile(os.path.join(folder, f"{name}.f32"), dtype=np.float32)


x, y = load("x").reshape(-1, width), load("y").astype(np.int64)
hx, hy = load("hx").reshape(-1, width), load("hy").astype(np.int64)
threads = 1
models = {
    "lightgbm": lambda: lightgbm.LGBMClassifier(
        n_estimators=100,
        learning_rate=0.1,
        num_leaves=31,
        min_child_samples=20,
        reg_lambda=0.0,
        max_bin=255,
        verbose=-1,
        n_jobs=threads,
    ),
    "sklearn-hgb": lambda: HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=31,
        min_samples_leaf=20,
        l2_regularization=0.0,
        max_bins=255,
        early_stopping=False,
    ),
}
for name, make in models.items():
    times, cpu = [], []
    for _ in range(3):
        m = make()
        t0, c0 = time.perf_counter(), time.process_time()
        m.fit(x, y)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    auc = roc_auc_score(hy, m.predict_proba(hx)[:, 1])
    wall = " ".join(f"{t:.2f}" for t in times)
    cpu_s = " ".join(f"{t:.2f}" for t in cpu)
    size = f"{len(y)}x{width}, {threads} thread"
    print(f"{name:<11} {size}: fit s {wall} (CPU s {cpu_s}), holdout ROC AUC {auc:.4f}")
