"""What the sidecar reads of a dataset's contract (contracts/<dataset>.yaml, the file the steps
validate against contracts/contract.schema.json): where its delayed labels are, how long a label
looks ahead and how late it arrives, and the name of its retrain DAG. The sidecar itself names no
dataset's tables or columns."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import MonitorError


def contracts_dir() -> Path:
    """``DRIFTWOOD_CONTRACTS_DIR``, else ``contracts/`` at the project root (``/app/contracts`` in
    the sidecar's image)."""
    configured = os.environ.get("DRIFTWOOD_CONTRACTS_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "contracts"


def load_contract(dataset: str, folder: Path | None = None) -> dict[str, Any]:
    path = (folder or contracts_dir()) / f"{dataset}.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise MonitorError("CONFIG_INVALID", f"dataset {dataset}: no contract at {path}") from err
    except yaml.YAMLError as err:
        raise MonitorError("CONFIG_INVALID", f"contract {path}: not valid YAML ({err})") from err
    if not isinstance(raw, dict) or raw.get("dataset") != dataset:
        raise MonitorError("CONFIG_INVALID", f"contract {path}: /dataset: expected {dataset!r}")
    return raw


@dataclass(frozen=True)
class LabelSource:
    """A table of label events: an entity's id, when the event happened (the target), when it was
    reported. A prediction at ``ts`` is a positive when the event falls in ``[ts, ts + horizon)``."""

    table: str
    id_column: str
    event_column: str
    reported_column: str
    horizon_hours: int
    label_delay_hours: int


def label_source(contract: dict[str, Any]) -> LabelSource:
    dataset = contract.get("dataset")
    training = contract.get("training") or {}
    for table in contract.get("tables") or []:
        columns = table.get("columns") or []
        target = next((c for c in columns if c.get("role") == "target"), None)
        if target is None:
            continue
        if target.get("type") != "timestamp":
            raise MonitorError(
                "CONFIG_INVALID",
                f"labels: dataset {dataset}'s target {target.get('name')!r} is a value, not an event "
                "time; quality from delayed labels needs a label table whose target is when the event "
                "happened",
            )
        reported = next(
            (c["name"] for c in columns if c.get("role") == "timestamp" and c is not target), None
        )
        if reported is None or "horizon_hours" not in training:
            raise MonitorError(
                "CONFIG_INVALID",
                f"labels: dataset {dataset}: the label table {table['name']!r} needs a timestamp column "
                "(when a label was reported) and the contract training.horizon_hours",
            )
        return LabelSource(
            table=table["name"],
            id_column=table["key"],
            event_column=target["name"],
            reported_column=reported,
            horizon_hours=int(training["horizon_hours"]),
            label_delay_hours=int(training.get("label_delay_hours", 0)),
        )
    raise MonitorError("CONFIG_INVALID", f"labels: dataset {dataset}'s contract has no target column")


def retrain_dag_id(contract: dict[str, Any]) -> str:
    """The contract's retrain DAG (``orchestration.retrain.dag_id``, default ``<dataset>_retrain``),
    as dags/driftwood_dags.py names it."""
    retrain = (contract.get("orchestration") or {}).get("retrain") or {}
    return str(retrain.get("dag_id") or f"{contract['dataset']}_retrain")
