"""The Evidently report itself (real Evidently 0.7): drift found where it was put, both report modes
give the same scores, and the per-column rule follows Evidently's method family."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CATEGORICAL, NUMERICAL, feature_rows

from monitoring.evidently.drift import _is_drifted, run_report
from monitoring.evidently.reference import column_stats, prepare


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


@pytest.mark.parametrize("reference_rows", [600, 2000])
def test_tests_chosen_from_kept_reference_statistics_match_evidentlys_own_choice(reference_rows: int) -> None:
    numerical = (*NUMERICAL, "flag", "level")
    ref_raw = feature_rows(reference_rows, seed=1)
    cur_raw = feature_rows(800, seed=2, shift=0.3)
    rng = np.random.default_rng(3)
    # Few distinct values: Evidently treats these as categories (Z / chi-square / Jensen-Shannon),
    # and ``level`` gains a sixth value in the current window only, which flips its test.
    ref_raw["flag"], cur_raw["flag"] = rng.integers(0, 2, reference_rows), rng.integers(0, 2, 800)
    ref_raw["level"], cur_raw["level"] = rng.integers(0, 5, reference_rows), rng.integers(0, 6, 800)
    ref, cur = prepare(ref_raw, numerical, CATEGORICAL), prepare(cur_raw, numerical, CATEGORICAL)
    stats = column_stats(ref, (*numerical, *CATEGORICAL))
    for mode in ("preset", "drift_only"):
        auto = run_report(cur, ref, numerical, CATEGORICAL, None, 0.5, {}, mode=mode)[1]
        chosen = run_report(
            cur, ref, numerical, CATEGORICAL, None, 0.5, {}, mode=mode, reference_stats=stats
        )[1]
        assert [(f.column, f.method, round(f.score, 9), f.drifted) for f in chosen.features] == [
            (f.column, f.method, round(f.score, 9), f.drifted) for f in auto.features
        ]
        assert (chosen.drifted_columns, chosen.drift_share) == (auto.drifted_columns, auto.drift_share)
    methods = {f.column: f.method for f in auto.features}
    assert methods["flag"] == ("Z-test p_value" if reference_rows <= 1000 else "Jensen-Shannon distance")
    assert methods["level"] == ("K-S p_value" if reference_rows <= 1000 else "Wasserstein distance (normed)")
