"""One Evidently report: DataDriftPreset over the features plus ValueDrift on the model's score,
current window first, reference second (Evidently 0.7's ``Report.run(current, reference)``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.metrics import DriftedColumnsCount, ValueDrift
from evidently.presets import DataDriftPreset


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
    return FeatureDrift(
        cfg["column"],
        cfg["method"],
        float(cfg["threshold"]),
        score,
        _is_drifted(cfg["method"], score, float(cfg["threshold"])),
    )


def run_report(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    numerical: tuple[str, ...],
    categorical: tuple[str, ...],
    prediction_column: str | None,
    drift_share: float,
    metadata: dict[str, str],
    mode: str = "preset",
) -> tuple[Snapshot, DriftSummary]:
    """``mode="preset"``: DataDriftPreset (drift table plus per-column statistics widgets).
    ``mode="drift_only"``: the same drift tests (DriftedColumnsCount + ValueDrift per column) without
    the statistics widgets, about three times faster on wide data (docs/monitoring.md, Scale)."""
    features = [*numerical, *categorical]
    num = [*numerical, prediction_column] if prediction_column else list(numerical)
    definition = DataDefinition(numerical_columns=num, categorical_columns=list(categorical))
    metrics: list[Any]
    if mode == "preset":
        metrics = [DataDriftPreset(columns=features, drift_share=drift_share)]
    else:
        metrics = [DriftedColumnsCount(columns=features, drift_share=drift_share)]
        metrics += [ValueDrift(column=c) for c in features]
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
    share = float(count.get("share", 0.0))
    summary = DriftSummary(
        drift_share=share,
        drifted_columns=int(count.get("count", 0)),
        dataset_drift=share >= drift_share,
        features=[per_column[c] for c in features if c in per_column],
        prediction=per_column.get(prediction_column) if prediction_column else None,
    )
    return snapshot, summary
