"""The Evidently report itself (real Evidently 0.7): drift found where it was put, both report modes
give the same scores, and the per-column rule follows Evidently's method family."""

from __future__ import annotations

from conftest import CATEGORICAL, NUMERICAL, feature_rows

from monitoring.evidently.drift import _is_drifted, run_report
from monitoring.evidently.reference import prepare


def frames(shift: float) -> tuple:
    ref = prepare(feature_rows(2000, seed=1), NUMERICAL, CATEGORICAL)
    ref["probability"] = feature_rows(2000, seed=1)["probability"]
    raw = feature_rows(1500, seed=2, shift=shift)
    cur = prepare(raw, NUMERICAL, CATEGORICAL)
    cur["probability"] = raw["probability"]
    return cur, ref


def test_both_report_modes_agree_and_find_the_planted_drift() -> None:
    cur, ref = frames(shift=0.6)
    results = {
        mode: run_report(cur, ref, NUMERICAL, CATEGORICAL, "probability", 0.5, {"t": "1"}, mode=mode)[1]
        for mode in ("preset", "drift_only")
    }
    full, lean = results["preset"], results["drift_only"]
    assert [(f.column, f.method, round(f.score, 9)) for f in full.features] == [
        (f.column, f.method, round(f.score, 9)) for f in lean.features
    ]
    assert (full.drift_share, full.dataset_drift) == (lean.drift_share, lean.dataset_drift)
    drifted = {f.column for f in full.features if f.drifted}
    # region was not shifted; the numeric features and the plan mix were.
    assert "region" not in drifted and {"tenure_days", "monthly_charges"} <= drifted
    assert full.dataset_drift and full.prediction is not None and full.prediction.drifted


def test_same_distribution_does_not_drift() -> None:
    cur, ref = frames(shift=0.0)
    _, summary = run_report(cur, ref, NUMERICAL, CATEGORICAL, None, 0.5, {}, mode="drift_only")
    assert not summary.dataset_drift and summary.prediction is None
    assert summary.drifted_columns == 0


def test_p_values_drift_below_and_distances_at_or_above_the_threshold() -> None:
    assert _is_drifted("K-S p_value", 0.01, 0.05) and not _is_drifted("K-S p_value", 0.2, 0.05)
    assert _is_drifted("Wasserstein distance (normed)", 0.1, 0.1)
    assert not _is_drifted("Jensen-Shannon distance", 0.09, 0.1)
