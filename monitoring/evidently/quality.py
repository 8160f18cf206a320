"""Classification quality once the delayed labels have arrived.

A label is an event (a cancellation, a default, …) that reaches the warehouse a while after it
happened: the dataset's contract names the table, its id column, the event's time and the time it
was reported (contract.py: ``label_source``; times in ms), so a window's quality can be judged only
``horizon_hours + label_delay_hours`` after its end. The prediction log names customers by token
(``HMAC-SHA256(key, id.strip().lower())``, 32 hex, tasks/src/pii.ts); the sidecar tokenises the
label's ids with the same key and joins on the token. A prediction at ``ts`` is a positive when
that entity's event falls in ``[ts, ts + horizon)``; one whose event came before ``ts`` is left
out. Quality is scored with Evidently's ClassificationPreset on the labelled window alone (the
training snapshot has no model scores to compare with).
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.presets import ClassificationPreset

from .config import LabelsConfig
from .errors import MonitorError

TARGET = "label"
# Evidently's metric (class name) → our gauge suffix.
QUALITY_METRICS = {
    "RocAuc": "roc_auc",
    "Accuracy": "accuracy",
    "Precision": "precision",
    "Recall": "recall",
    "F1Score": "f1",
    "LogLoss": "log_loss",
}


@dataclass(frozen=True)
class Labels:
    # token → event time (ms); the newest report time says how far the label feed has come.
    event_at: dict[str, int]
    watermark: datetime | None


def tokenise(value: str, key: str) -> str:
    """tasks/src/pii.ts ``tokenise``: the same value and key give the same token."""
    return hmac.new(key.encode(), value.strip().lower().encode(), hashlib.sha256).hexdigest()[:32]


def _label_rows(url: str, config: LabelsConfig) -> list[tuple[Any, Any, Any]]:
    """``(id, event time, reported time)`` of every label, read-only, from the SQLite or PostgreSQL
    warehouse the platform writes (``sqlite://<path>`` or ``postgres://…``; a schema is chosen as the
    platform does, ``?options=-c%20search_path%3D<schema>``). The names come from the contract."""
    table = config.table
    if not (table and config.id_column and config.event_column and config.reported_column):
        raise MonitorError("CONFIG_INVALID", "labels: no label table (the dataset's contract names it)")
    query = f"SELECT {config.id_column}, {config.event_column}, {config.reported_column} FROM {table}"
    if url.startswith("sqlite://"):
        path = Path(url[len("sqlite://") :])
        if not path.is_file():
            raise MonitorError("CONFIG_INVALID", f"setting labels.warehouse_url: no warehouse at {path}")
        # Read-only: the sidecar never writes the warehouse.
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(query).fetchall()
        except sqlite3.Error as err:
            raise MonitorError(
                "CONFIG_INVALID", f"labels: cannot read table {table} in {path} ({err})"
            ) from err
        finally:
            con.close()
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg  # only a PostgreSQL warehouse needs the driver

        where = url.split("@", 1)[-1]  # the address, without credentials
        try:
            with psycopg.connect(url, connect_timeout=10) as pg:
                pg.read_only = True
                with pg.cursor() as cur:
                    cur.execute(query)
                    return cur.fetchall()
        except psycopg.Error as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise MonitorError(
                "CONFIG_INVALID", f"labels: cannot read table {table} at {where} ({reason})"
            ) from err
    raise MonitorError(
        "CONFIG_INVALID",
        "setting labels.warehouse_url: expected sqlite://<path> or postgres://…, "
        f"got {url.split('@', 1)[-1]!r}",
    )


def read_labels(config: LabelsConfig) -> Labels:
    key = config.pii_key()
    rows = _label_rows(config.resolved_url(), config)
    events = {tokenise(str(eid), key): int(at) for eid, at, _ in rows}
    newest = max((int(r[2]) for r in rows), default=None)
    return Labels(events, datetime.fromtimestamp(newest / 1000, UTC) if newest is not None else None)


def complete_until(labels: Labels, config: LabelsConfig) -> datetime | None:
    """Predictions made before this time have all their labels in (None: no labels yet)."""
    if labels.watermark is None:
        return None
    return labels.watermark - timedelta(hours=config.horizon_hours + config.label_delay_hours)


def join_labels(window: pd.DataFrame, labels: Labels, horizon_hours: int) -> pd.DataFrame:
    """The window's predictions with a 0/1 ``label``; rows without a token, or of entities whose
    event came before the prediction, are left out."""
    frame = window[window["customer_token"].notna()].copy()
    ts_ms = frame["ts_ms"].astype("int64").to_numpy()
    event_at = frame["customer_token"].map(labels.event_at)
    horizon_ms = horizon_hours * 3_600_000
    at = event_at.fillna(-1).astype("int64").to_numpy()
    known = event_at.notna().to_numpy()
    before = known & (at < ts_ms)
    positive = known & (at >= ts_ms) & (at < ts_ms + horizon_ms)
    frame[TARGET] = positive.astype("int64")
    return frame[~before].reset_index(drop=True)


def run_quality(
    frame: pd.DataFrame, prediction_column: str, metadata: dict[str, str]
) -> tuple[Snapshot, dict[str, Any]]:
    definition = DataDefinition(
        numerical_columns=[prediction_column],
        classification=[BinaryClassification(target=TARGET, prediction_probas=prediction_column)],
    )
    data = frame[[TARGET, prediction_column]].astype({TARGET: "int64", prediction_column: "float64"})
    snapshot = Report([ClassificationPreset()], metadata=metadata).run(
        Dataset.from_pandas(data, data_definition=definition), None
    )
    values: dict[str, Any] = {}
    for m in snapshot.dict()["metrics"]:
        name = str(m["metric_name"]).split("(", 1)[0]
        if name in QUALITY_METRICS and isinstance(m["value"], int | float):
            values[QUALITY_METRICS[name]] = float(m["value"])
    return snapshot, values
