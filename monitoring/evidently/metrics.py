"""Prometheus metrics of the sidecar, on a registry of its own (two sidecars in one process, as in
the tests, do not mix). Drift gauges carry model name, version and reference hash; when the model or
reference changes the old series are dropped, so a dashboard never shows a stale version's score."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .drift import DriftSummary
from .quality import QUALITY_METRICS

LABELS = ["dataset", "model_name", "model_version", "reference_hash"]
QUALITY_LABELS = ["dataset", "model_name", "model_version"]


class IngestResultCollector(Collector):
    """Exports the last ingest result (``<DRIFTWOOD_HOME>/results/ingest.json``, written by
    ``driftwood ingest``) at scrape time, so the ingest anomaly alert has numbers to look at."""

    def __init__(self, results_dir: Path | None) -> None:
        self._file = results_dir / "ingest.json" if results_dir else None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self._file is None:
            return
        try:
            result = json.loads(self._file.read_text())
            mtime = self._file.stat().st_mtime
        except (OSError, ValueError):
            return
        if not isinstance(result, dict):
            return
        dataset = str(result.get("dataset", "unknown"))
        for key, name, help_text in (
            ("rowsRead", "driftwood_ingest_rows_read", "Rows read by the last ingest run"),
            ("rowsLoaded", "driftwood_ingest_rows_loaded", "Rows loaded by the last ingest run"),
            ("rowsRejected", "driftwood_ingest_rows_rejected", "Rows quarantined by the last ingest run"),
            ("quarantined", "driftwood_ingest_files_quarantined", "Files quarantined by the last ingest run"),
        ):
            value = result.get(key)
            if isinstance(value, int | float):
                g = GaugeMetricFamily(name, help_text, labels=["dataset"])
                g.add_metric([dataset], float(value))
                yield g
        g = GaugeMetricFamily(
            "driftwood_ingest_last_result_timestamp_seconds",
            "When the last ingest result was written",
            labels=["dataset"],
        )
        g.add_metric([dataset], mtime)
        yield g


class MonitorMetrics:
    def __init__(self, results_dir: Path | None = None) -> None:
        r = self.registry = CollectorRegistry()
        self.share = Gauge(
            "driftwood_drift_share", "Share of features that drifted in the last window", LABELS, registry=r
        )
        self.dataset_drift = Gauge(
            "driftwood_drift_dataset_drift",
            "1 when the last window drifted as a whole (share >= drift_share)",
            LABELS,
            registry=r,
        )
        self.feature_score = Gauge(
            "driftwood_drift_feature_score",
            "Drift score of one feature (method in the label)",
            [*LABELS, "feature", "method"],
            registry=r,
        )
        self.feature_drifted = Gauge(
            "driftwood_drift_feature_drifted",
            "1 when a feature drifted in the last window",
            [*LABELS, "feature"],
            registry=r,
        )
        self.prediction_score = Gauge(
            "driftwood_drift_prediction_score",
            "Drift score of the model's predicted probability",
            [*LABELS, "method"],
            registry=r,
        )
        self.rows = Gauge(
            "driftwood_drift_rows_compared", "Rows compared in the last run", [*LABELS, "side"], registry=r
        )
        self.detected = Gauge(
            "driftwood_drift_detected",
            "1 when drift is declared (k of the last n windows)",
            ["dataset"],
            registry=r,
        )
        self.last_run = Gauge(
            "driftwood_drift_last_run_timestamp_seconds",
            "When the last drift run finished",
            ["dataset"],
            registry=r,
        )
        self.duration = Gauge(
            "driftwood_drift_run_duration_seconds", "Duration of the last drift run", ["dataset"], registry=r
        )
        self.runs = Counter(
            "driftwood_drift_runs", "Drift runs by outcome", ["dataset", "outcome"], registry=r
        )
        self.decisions = Counter(
            "driftwood_drift_decisions", "Retrain decisions by action", ["dataset", "action"], registry=r
        )
        self.triggers = Counter(
            "driftwood_drift_retrain_triggers",
            "Retrain requests sent, by delivery outcome",
            ["dataset", "outcome"],
            registry=r,
        )
        self.alerts = Counter(
            "driftwood_alert_retrain_decisions",
            "Alerts received on POST /alerts, by the alert's dataset and what was decided",
            ["dataset", "outcome"],
            registry=r,
        )
        # Quality of the newest window whose delayed labels are in (driftwood_model_quality_roc_auc, …).
        self.quality = {
            name: Gauge(
                f"driftwood_model_quality_{name}",
                f"{name} of the model on the newest labelled window",
                QUALITY_LABELS,
                registry=r,
            )
            for name in QUALITY_METRICS.values()
        }
        self.quality_rows = Gauge(
            "driftwood_model_quality_labelled_rows",
            "Predictions with a label in the newest labelled window",
            QUALITY_LABELS,
            registry=r,
        )
        self.quality_window_end = Gauge(
            "driftwood_model_quality_window_end_timestamp_seconds",
            "End of the window the quality gauges describe",
            QUALITY_LABELS,
            registry=r,
        )
        r.register(IngestResultCollector(results_dir))

    def publish_quality(
        self, labels: dict[str, str], values: dict[str, float], rows: int, end: float
    ) -> None:
        for g in (*self.quality.values(), self.quality_rows, self.quality_window_end):
            g.clear()
        for name, value in values.items():
            self.quality[name].labels(**labels).set(value)
        self.quality_rows.labels(**labels).set(rows)
        self.quality_window_end.labels(**labels).set(end)

    def publish(
        self, labels: dict[str, str], summary: DriftSummary, current_rows: int, reference_rows: int
    ) -> None:
        for g in (
            self.share,
            self.dataset_drift,
            self.feature_score,
            self.feature_drifted,
            self.prediction_score,
            self.rows,
        ):
            g.clear()
        self.share.labels(**labels).set(summary.drift_share)
        self.dataset_drift.labels(**labels).set(1 if summary.dataset_drift else 0)
        for f in summary.features:
            self.feature_score.labels(**labels, feature=f.column, method=f.method).set(f.score)
            self.feature_drifted.labels(**labels, feature=f.column).set(1 if f.drifted else 0)
        if summary.prediction:
            self.prediction_score.labels(**labels, method=summary.prediction.method).set(
                summary.prediction.score
            )
        self.rows.labels(**labels, side="current").set(current_rows)
        self.rows.labels(**labels, side="reference").set(reference_rows)
