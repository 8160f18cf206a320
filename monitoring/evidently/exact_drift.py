"""The drift decision from column summaries of every row (``column_summary.py``), equal to what
Evidently's full computation decides on the same rows.

Per column the test is Evidently's default choice (``registry._get_default_stattest``), made from
the summaries. The two tests a large reference gets, normed Wasserstein and Jensen-Shannon on
counts, are computed here from distinct values and counts with the formulas of Evidently's own
functions (``wasserstein_distance_norm.py``: scipy's ``wasserstein_distance`` over the reference's
``np.std``; ``jensenshannon.py`` + ``utils.get_binned_data``: scipy's ``jensenshannon`` over value
shares). Any other test (K-S, chi-square and Z for references of up to 1000 rows, Jensen-Shannon on
a histogram) is run by Evidently's registered function on the rows rebuilt from the summary, so its
score is Evidently's by construction. ``tests/monitoring/test_monitoring_exact_drift.py`` checks
both against a full Evidently report.
"""

from __future__ import annotations

import numpy as np
from evidently.legacy.calculations.stattests import (
    chi_stat_test,
    jensenshannon_stat_test,
    ks_stat_test,
    wasserstein_stat_test,
    z_stat_test,
)
from evidently.legacy.calculations.stattests.registry import StatTest, get_registered_stattest
from evidently.legacy.core import ColumnType
from scipy.spatial import distance

from .column_summary import ColumnSummary
from .drift import DriftSummary, FeatureDrift, _is_drifted
from .errors import MonitorError

_TESTS = {
    t.display_name: t
    for t in (chi_stat_test, jensenshannon_stat_test, ks_stat_test, wasserstein_stat_test, z_stat_test)
}


def test_for(display_name: str) -> StatTest | None:
    """The default test a result names (``FeatureDrift.method`` holds the display name)."""
    return _TESTS.get(display_name)


def default_test(reference: ColumnSummary, current: ColumnSummary, numerical: bool) -> StatTest:
    """Evidently's default: up to 1000 reference values K-S / chi-square / Z, above that
    Wasserstein / Jensen-Shannon; five distinct values or fewer (both sides) count as categories."""
    if reference.distinct > 5 or current.distinct > 5:
        distinct = 6
    else:
        distinct = len(set(reference.values.tolist()) | set(current.values.tolist()))
    if reference.total <= 1000:
        if numerical and distinct > 5:
            return ks_stat_test
        return chi_stat_test if distinct > 2 else z_stat_test
    return wasserstein_stat_test if numerical and distinct > 5 else jensenshannon_stat_test


def wasserstein_normed(reference: ColumnSummary, current: ColumnSummary) -> float:
    """scipy's first Wasserstein distance (``_cdf_distance`` with p=1) on sorted distinct values
    weighted by their counts, over the reference's population standard deviation (at least 0.001)."""
    u, v = reference.values, current.values
    # Both sides are sorted, so a stable sort of the two is a merge; the CDF of each side at a
    # point is the running sum of its counts. Where two points tie the step between them is zero,
    # so this equals scipy's searchsorted form term by term.
    order = np.argsort(np.concatenate([u, v]), kind="stable")
    both = np.concatenate([u, v])[order]
    deltas = np.diff(both)
    zeros_u, zeros_v = np.zeros(len(v), dtype=np.int64), np.zeros(len(u), dtype=np.int64)
    u_cdf = (
        np.cumsum(np.concatenate([reference.counts.astype(np.int64), zeros_u])[order][:-1]) / reference.total
    )
    v_cdf = np.cumsum(np.concatenate([zeros_v, current.counts.astype(np.int64)])[order][:-1]) / current.total
    del order
    distance_ = float(np.sum(np.abs(u_cdf - v_cdf) * deltas))
    mean = float(np.dot(u, reference.counts)) / reference.total
    std = float(np.sqrt(np.dot((u - mean) ** 2, reference.counts) / reference.total))
    return distance_ / max(std, 0.001)


def jensen_shannon_counts(reference: ColumnSummary, current: ColumnSummary) -> float:
    """scipy's Jensen-Shannon distance between the two sides' shares of each value."""
    keys = sorted(set(reference.values.tolist()) | set(current.values.tolist()))
    ref = dict(zip(reference.values.tolist(), reference.counts.tolist(), strict=True))
    cur = dict(zip(current.values.tolist(), current.counts.tolist(), strict=True))
    p = np.array([ref.get(k, 0) / reference.total for k in keys])
    q = np.array([cur.get(k, 0) / current.total for k in keys])
    return float(distance.jensenshannon(p, q))


def column_drift(
    column: str, reference: ColumnSummary, current: ColumnSummary, numerical: bool, method: str | None = None
) -> FeatureDrift:
    if reference.total == 0:
        raise MonitorError("REFERENCE_INVALID", f"column {column}: the reference holds no value of it")
    kind = ColumnType.Numerical if numerical else ColumnType.Categorical
    test = (
        default_test(reference, current, numerical)
        if method is None
        else get_registered_stattest(method, kind)
    )
    threshold = float(test.default_threshold)
    # Jensen-Shannon bins numbers with more than 20 reference values into a histogram: not from counts.
    by_counts = test.name == jensenshannon_stat_test.name and (not numerical or reference.distinct <= 20)
    if test.name == wasserstein_stat_test.name:
        score = wasserstein_normed(reference, current)
    elif by_counts:
        score = jensen_shannon_counts(reference, current)
    else:
        result = test(reference.series(), current.series(), kind, threshold)
        score = float(result.drift_score)
    return FeatureDrift(
        column, test.display_name, threshold, score, _is_drifted(test.display_name, score, threshold)
    )


def exact_drift(
    reference: dict[str, ColumnSummary],
    current: dict[str, ColumnSummary],
    numerical: tuple[str, ...],
    categorical: tuple[str, ...],
    prediction_column: str | None,
    drift_share: float,
) -> DriftSummary:
    """Every feature's test on every row, the drifted share with Evidently's rule (DriftedColumnsCount:
    share of drifted columns, dataset drift at ``share >= drift_share``), and prediction drift."""
    features = [
        *(column_drift(c, reference[c], current[c], True) for c in numerical),
        *(column_drift(c, reference[c], current[c], False) for c in categorical),
    ]
    drifted = sum(1 for f in features if f.drifted)
    share = drifted / len(features) if features else 0.0
    prediction = (
        column_drift(prediction_column, reference[prediction_column], current[prediction_column], True)
        if prediction_column
        else None
    )
    return DriftSummary(share, drifted, share >= drift_share, features, prediction)
