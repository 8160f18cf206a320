"""Reads the dataset contracts and says which DAGs each one asks for (no Airflow objects here).

Every ``*.yaml`` in the contracts folder (``DRIFTWOOD_CONTRACTS_DIR``, else ``<project root>/contracts``)
is one dataset. Its ``orchestration`` section names the pipeline and retrain DAGs; what it leaves out
comes from the task kind (``DEFAULTS``). A contract that cannot be read, does not match
``contract.schema.json`` (when the schema sits in the folder) or reuses another contract's DAG id is
returned as a ``ContractProblem`` naming the file, never raised: the other datasets keep their DAGs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftwood_steps import STEP_KINDS, project_root

SCHEMA_FILE = "contract.schema.json"
ROLES = ("pipeline", "retrain")
TABULAR = ("binary_classification", "regression")
FORECAST = "sequence_forecast"

# Per DAG role, the settings a tabular contract (binary_classification, regression) may leave out.
# Pipeline: hourly, and on new raw data: load, snapshot, build features, train, score and gate.
# Retrain: on drift (or a REST trigger), on the newest data already loaded. `{dataset}`: its name.
TABULAR_DEFAULTS: dict[str, dict[str, Any]] = {
    "pipeline": {
        "dag_id": "{dataset}_pipeline",
        "schedule": "@hourly",
        "steps": ("ingest", "snapshot", "features", "train", "evaluate", "promote"),
        "on_new_data": True,
        "on_drift": False,
    },
    "retrain": {
        "dag_id": "{dataset}_retrain",
        "schedule": None,
        "steps": ("train", "promote"),
        "on_new_data": False,
        "on_drift": True,
    },
}
# A sequence_forecast contract's: every hour the hour that just closed is extracted from the source
# and loaded; every day after the midnight hour's load the model is retrained on a full day and gated.
FORECAST_DEFAULTS: dict[str, dict[str, Any]] = {
    "pipeline": {
        "dag_id": "{dataset}_forecast",
        "schedule": "0 * * * *",
        "steps": ("extract", "ingest"),
        "on_new_data": False,
        "on_drift": False,
    },
    "retrain": {
        "dag_id": "{dataset}_retrain",
        "schedule": "30 0 * * *",
        "steps": ("train", "promote"),
        "on_new_data": False,
        "on_drift": False,
    },
}
DEFAULTS = {**{task: TABULAR_DEFAULTS for task in TABULAR}, FORECAST: FORECAST_DEFAULTS}


@dataclass(frozen=True)
class DagSettings:
    """One DAG a contract asks for, with the defaults filled in."""

    dataset: str
    task: str
    role: str  # pipeline | retrain
    dag_id: str
    schedule: str | None
    steps: tuple[str, ...]
    on_new_data: bool
    on_drift: bool
    description: str
    contract: Path

    @property
    def forecast(self) -> bool:
        return self.task == FORECAST


@dataclass(frozen=True)
class ContractProblem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def contracts_dir() -> Path:
    """``DRIFTWOOD_DAG_CONTRACTS_DIR`` (the Airflow image's own contracts: the DAGs are deployed with
    the scheduler, while ``DRIFTWOOD_CONTRACTS_DIR`` is the folder handed to the steps, which an
    operator may point at a folder the steps share), else ``DRIFTWOOD_CONTRACTS_DIR``, else the
    checkout's ``contracts/``."""
    given = os.environ.get("DRIFTWOOD_DAG_CONTRACTS_DIR") or os.environ.get("DRIFTWOOD_CONTRACTS_DIR")
    return Path(given) if given else project_root() / "contracts"


def load_dag_settings(folder: Path | None = None) -> tuple[list[DagSettings], list[ContractProblem]]:
    """The enabled DAGs of every contract in ``folder``, in file-name order, and the contracts that
    could not be used (each named, with the first problem found)."""
    folder = folder or contracts_dir()
    if not folder.is_dir():
        # Silence here would be a stack without DAGs: say where the contracts were looked for.
        hint = "set DRIFTWOOD_DAG_CONTRACTS_DIR or DRIFTWOOD_CONTRACTS_DIR"
        return [], [ContractProblem(folder, f"no contracts folder here ({hint})")]
    validate = _schema_validator(folder)
    dags: list[DagSettings] = []
    problems: list[ContractProblem] = []
    owners: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            contract = _read(path, validate)
            found = dag_settings(contract, path)
        except ValueError as err:
            problems.append(ContractProblem(path, str(err)))
            continue
        taken = [s.dag_id for s in found if s.dag_id in owners]
        if taken:
            problems.append(
                ContractProblem(path, f"DAG id {taken[0]} is already made from {owners[taken[0]].name}")
            )
            continue
        for settings in found:
            owners[settings.dag_id] = path
        dags.extend(found)
    return dags, problems


def dag_settings(contract: Mapping[str, Any], path: Path) -> list[DagSettings]:
    """The contract's enabled pipeline and retrain DAGs, defaults filled in by its task kind."""
    dataset = contract.get("dataset")
    task = contract.get("task")
    if not isinstance(dataset, str) or not dataset:
        raise ValueError("/dataset: required, a lower-case name")
    if task not in DEFAULTS:
        raise ValueError(f"/task: expected one of {', '.join(DEFAULTS)}, got {task!r}")
    section = contract.get("orchestration") or {}
    if not isinstance(section, Mapping):
        raise ValueError("/orchestration: expected a mapping")
    out = []
    for role in ROLES:
        given = section.get(role) or {}
        if not isinstance(given, Mapping):
            raise ValueError(f"/orchestration/{role}: expected a mapping")
        if given.get("enabled", True) is False:
            continue
        merged = {**DEFAULTS[task][role], **{k: v for k, v in given.items() if k != "enabled"}}
        steps = tuple(merged["steps"])
        unknown = [s for s in steps if s not in STEP_KINDS]
        if unknown or not steps or len(set(steps)) != len(steps):
            raise ValueError(
                f"/orchestration/{role}/steps: expected distinct steps out of {', '.join(STEP_KINDS)}, "
                f"got {list(steps)}"
            )
        schedule = merged["schedule"]
        if schedule is not None and not is_cron(schedule):
            raise ValueError(
                f"/orchestration/{role}/schedule: expected a cron expression, a preset (@hourly, @daily, …) "
                f"or null, got {schedule!r}"
            )
        out.append(
            DagSettings(
                dataset=dataset,
                task=task,
                role=role,
                dag_id=str(merged["dag_id"]).format(dataset=dataset),
                schedule=schedule,
                steps=steps,
                on_new_data=bool(merged["on_new_data"]),
                on_drift=bool(merged["on_drift"]),
                description=str(contract.get("description") or "").strip(),
                contract=path,
            )
        )
    if len({s.dag_id for s in out}) != len(out):
        raise ValueError("/orchestration: the pipeline and retrain DAGs need different dag_id values")
    return out


def is_cron(schedule: Any) -> bool:
    """A cron expression or preset Airflow's cron trigger takes (checked here, so that a typo costs
    its own contract's DAGs, not every dataset's)."""
    from airflow.utils.dates import cron_presets
    from croniter import croniter

    return isinstance(schedule, str) and croniter.is_valid(cron_presets.get(schedule, schedule))


def _read(path: Path, validate: Any) -> Mapping[str, Any]:
    import yaml

    try:
        contract = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read the contract ({' '.join(str(err).split())})") from err
    if not isinstance(contract, Mapping):
        raise ValueError("expected a mapping at the top level")
    if validate is not None:
        errors = sorted(validate.iter_errors(contract), key=lambda e: "/".join(map(str, e.absolute_path)))
        if errors:
            first = errors[0]
            where = "/" + "/".join(str(p) for p in first.absolute_path)
            raise ValueError(f"{where}: {first.message}")
    return contract


def _schema_validator(folder: Path) -> Any:
    """The contract schema's validator, when the schema sits next to the contracts (as in the
    checkout and the images); without it, the orchestration section is still checked by hand."""
    path = folder / SCHEMA_FILE
    if not path.is_file():
        return None
    from jsonschema import Draft7Validator

    return Draft7Validator(json.loads(path.read_text()))
