"""One Evidently report: DataDriftPreset over the features plus ValueDrift on the model's score,
current window first, reference second (Evidently 0.7's ``Report.run(current, reference)``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.legacy.calculations.stattests import (
    chi_stat_test,
    jensenshannon_stat_test,
    ks_stat_test,
    wasserstein_stat_test,
    z_stat_test,
)
from evidently.legacy.calculations.stattests.registry import StatTest
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

from .reference import ColumnStats

# Results of an explicitly chosen test carry its short name; gauges keep Evidently's display name.
_DISPLAY = {
    t.name: t.display_name
    for t in (chi_stat_test, jensenshannon_stat_test, ks_stat_test, wasserstein_stat_test, z_stat_test)
}


@dataclass(frozen=True)
class FeatureDrift:
    column: str
    method: str
    threshold: float
    score: float
    drifted: bool


@dataclass
class DriftSummary:
    drift_share: float
    drifted_columns: int
    dataset_drift: bool
    features: list[FeatureDrift]
    prediction: FeatureDrift | None
    extra: dict[str, Any] = field(default_factory=dict)


def _is_drifted(method: str, score: float, threshold: float) -> bool:
    # p-value tests (ks, chi-square, …) drift below the threshold; distances (wasserstein,
    # jensen-shannon, psi, …) at or above it — Evidently's own rule for each family.
    return score < threshold if "p_value" in method else score >= threshold


def _feature(metric: dict[str, Any]) -> FeatureDrift:
    cfg = metric["config"]
    score = float(metric["value"])
    method = _DISPLAY.get(cfg["method"], cfg["method"])
    return FeatureDrift(
        cfg["column"],
        method,
        float(cfg["threshold"]),
        score,
        _is_drifted(method, score, float(cfg["threshold"])),
    )


def default_test(stats: ColumnStats, current: pd.Series, numerical: bool) -> StatTest:
    """Evidently's own default choice (``registry._get_default_stattest``: up to 1000 reference
    values K-S / chi-square / Z, above Wasserstein / Jensen-Shannon; five distinct values or fewer
    count as categories), made from statistics kept with the reference, so a run does not rescan
    the reference for it."""
    if stats.small_uniques is None:
        distinct = 6
    else:
        cur = current.replace([np.inf, -np.inf], np.nan) if numerical else current
        distinct = len(stats.small_uniques | set(cur.dropna().unique().tolist()))
    if stats.count <= 1000:
        if numerical and distinct > 5:
            return ks_stat_test
        return chi_stat_test if distinct > 2 else z_stat_test
    return wasserstein_stat_test if numerical and distinct > 5 else jensenshannon_stat_test


def run_report(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    numerical: tuple[str, ...],
    categorical: tuple[str, ...],
    prediction_column: str | None,
    drift_share: float,
    metadata: dict[str, str],
    mode: str = "preset",
    reference_stats: dict[str, ColumnStats] | None = None,
    methods: dict[str, str] | None = None,
) -> tuple[Snapshot, DriftSummary]:
    """``mode="preset"``: DataDriftPreset (drift table plus per-column statistics widgets).
    ``mode="drift_only"``: the same test per column (one ValueDrift each) without the preset's
    table; the drifted count and share are counted here from those results, with Evidently's rule,
    instead of by DriftedColumnsCount, which would run every column's test a second time
    (docs/monitoring.md, Scale). With ``reference_stats`` each column's test is chosen up front;
    ``methods`` names it per column instead (the exact decision's tests, exact_drift.py)."""
    features = [*numerical, *categorical]
    num = [*numerical, prediction_column] if prediction_column else list(numerical)
    definition = DataDefinition(numerical_columns=num, categorical_columns=list(categorical))
    methods = dict(methods or {})
    if reference_stats and not methods:
        kinds = {c: True for c in numerical} | {c: False for c in categorical}
        for c in features:
            if c not in reference_stats:
                continue
            test = default_test(reference_stats[c], current[c], kinds[c])
            # Evidently picks some tests by default that it refuses when named (Z on a numeric
            # column with two values): those columns keep the automatic choice.
            if any(t.value == ("num" if kinds[c] else "cat") for t in test.allowed_feature_types):
                methods[c] = test.name
    metrics: list[Any]
    if mode == "preset":
        metrics = [
            DataDriftPreset(columns=features, drift_share=drift_share, per_column_method=methods or None)
        ]
    else:
        metrics = [ValueDrift(column=c, method=methods.get(c)) for c in features]
    if prediction_column:
        metrics.append(ValueDrift(column=prediction_column))
    cols = [*features, prediction_column] if prediction_column else features
    snapshot = Report(metrics, metadata=metadata).run(
        Dataset.from_pandas(current[cols], data_definition=definition),
        Dataset.from_pandas(reference[cols], data_definition=definition),
    )
    count: dict[str, float] = {}
    per_column: dict[str, FeatureDrift] = {}
    for m in snapshot.dict()["metrics"]:
        kind = m["config"].get("type", "")
        if kind.endswith(":DriftedColumnsCount"):
            count = m["value"]
        elif kind.endswith(":ValueDrift"):
            per_column[m["config"]["column"]] = _feature(m)
    if mode != "preset":
        drifted = sum(1 for c in features if c in per_column and per_column[c].drifted)
        count = {"count": drifted, "share": drifted / len(features)}
    share = float(count.get("share", 0.0))
    summary = DriftSummary(
        drift_share=share,
        drifted_columns=int(count.get("count", 0)),
        dataset_drift=share >= drift_share,
        features=[per_column[c] for c in features if c in per_column],
        prediction=per_column.get(prediction_column) if prediction_column else None,
    )
    return snapshot, summary
