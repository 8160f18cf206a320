"""The DAG factory: every dataset contract's pipeline and retrain DAGs, made from its ``orchestration``.

A new dataset gets its DAGs by adding its contract to the contracts folder (``DRIFTWOOD_CONTRACTS_DIR``,
else ``contracts/``): no Python edit. For each contract (``driftwood_contracts.py`` reads them and
fills in the task kind's defaults):

* the **pipeline** DAG (``<dataset>_pipeline``, hourly, ``ingest → snapshot → features → train →
  evaluate → promote`` for a tabular dataset; ``<dataset>_forecast``, ``extract → ingest`` of the hour
  that just closed, for a forecast) — on its schedule, and with ``on_new_data`` also when the asset
  ``<dataset>_raw`` (``driftwood://<dataset>/raw``) gets an event;
* the **retrain** DAG (``<dataset>_retrain``, ``train → promote``) — on its schedule (none for a
  tabular dataset), with ``on_drift`` when the asset ``<dataset>_drift`` (``driftwood://<dataset>/drift``)
  gets an event, and on a REST trigger.

A DAG that trains ends with ``mlflow_evaluate`` (``mlflow_evaluate_task``): MLflow's own evaluation of
the version train registered, after promote has decided, so that it never holds up or stops a
promotion; its failure fails the task (and the run), the champion already moved or not.

The steps' arguments come from the step kind with the dataset substituted (``driftwood_steps.
dataset_steps``). A contract that cannot be used makes no DAG here and is reported as an import error
of ``driftwood_contract_errors.py`` naming the file; the other contracts' DAGs are unaffected.
See docs/orchestration.md.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, TriggerRule
from airflow.utils.dates import cron_presets
from driftwood_contracts import DagSettings, load_dag_settings
from driftwood_lake_queue import raw_watchers
from driftwood_steps import (
    INTERVAL_END,
    MLFLOW_EVALUATE,
    RUN_END,
    STEP_MACROS,
    chain_steps,
    dataset_steps,
    mlflow_evaluate_step,
    step_task,
)

log = logging.getLogger(__name__)

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def raw_asset(dataset: str) -> Asset:
    """New raw files landed under the lake's ``raw/<dataset>/``: a lander posts the event, or, with
    ``DRIFTWOOD_LAKE_QUEUE_URL``, the S3 lake's notifications make it (``driftwood_lake_queue.py``)."""
    return Asset(
        name=f"{dataset}_raw",
        uri=f"driftwood://{dataset}/raw",
        group="driftwood",
        watchers=raw_watchers(dataset),
    )


def drift_asset(dataset: str) -> Asset:
    """The drift monitor saw drift hold on the dataset's champion."""
    return Asset(name=f"{dataset}_drift", uri=f"driftwood://{dataset}/drift", group="driftwood")


def cron_period(expression: str) -> timedelta:
    """The time between two runs of a cron expression or preset: a forecast DAG's data interval
    (a run at 05:00 of ``0 * * * *`` covers [04:00, 05:00))."""
    from croniter import croniter  # what Airflow's cron timetables compute with

    cron = croniter(cron_presets.get(expression, expression), START_DATE)
    first = cron.get_next(datetime)
    return cron.get_next(datetime) - first


def schedule_of(settings: DagSettings) -> Any:
    """The contract's schedule as Airflow's: a cron trigger, the dataset's assets, both, or none."""
    assets = [
        *([raw_asset(settings.dataset)] if settings.on_new_data else []),
        *([drift_asset(settings.dataset)] if settings.on_drift else []),
    ]
    # A list of assets means "all of them"; either one must start a run.
    condition: Any = assets if len(assets) < 2 else AssetAny(*assets)
    if settings.schedule is None:
        return condition or None
    # A forecast's steps cover the data interval (the period that just closed); a tabular dataset's
    # steps load up to the run's end, which an asset-triggered run also has.
    interval = cron_period(settings.schedule) if settings.forecast else timedelta(0)
    cron = CronTriggerTimetable(settings.schedule, timezone="UTC", interval=interval)
    return AssetOrTimeSchedule(timetable=cron, assets=condition) if assets else cron


def doc_of(settings: DagSettings) -> str:
    triggers = [f"the schedule `{settings.schedule}` (UTC)"] if settings.schedule else []
    if settings.on_new_data:
        triggers.append(f"an event of the asset `driftwood://{settings.dataset}/raw` (new raw data landed)")
    if settings.on_drift:
        triggers.append(f"an event of the asset `driftwood://{settings.dataset}/drift` (the drift monitor)")
    triggers.append("a REST trigger (`POST /api/v2/dags/" + settings.dag_id + "/dagRuns`)")
    return "\n".join(
        [
            f"# {settings.dag_id}: the {settings.role} of the dataset `{settings.dataset}`",
            "",
            settings.description or f"The dataset `{settings.dataset}` ({settings.task}).",
            "",
            f"**Steps:** {' → '.join(settings.steps)} (`node tasks/dist/cli.js <step> --dataset "
            f"{settings.dataset} …`). A gate not passed (exit 99) marks the task skipped, not failed.",
            *(
                [
                    "",
                    f"Then `{MLFLOW_EVALUATE}`: `mlflow.models.evaluate` of the version train registered "
                    f"(`{model_name_of(settings)}@challenger`) on its holdout, into a child run of its "
                    "training run, once per version; it runs whether promote moved the alias or not, and "
                    "never blocks it (python/driftwood_mlflow/evaluate.py).",
                ]
                if "train" in settings.steps and mlflow_evaluate_enabled()
                else []
            ),
            "",
            "**Started by:** " + "; ".join(triggers) + ".",
            "",
            f"Made from the contract `{settings.contract.name}` by `dags/driftwood_dags.py`; see "
            "docs/orchestration.md.",
        ]
    )


def steps_of(settings: DagSettings) -> dict[str, Any]:
    if settings.forecast:
        return dataset_steps(settings.dataset, INTERVAL_END)
    # A retrain without its own snapshot step trains on the newest cutoff whose labels are all in;
    # with one, train names the snapshot the run just took.
    retrain_latest = settings.role == "retrain" and "snapshot" not in settings.steps
    return dataset_steps(settings.dataset, RUN_END, "latest" if retrain_latest else None)


def build_dag(settings: DagSettings) -> DAG:
    with DAG(
        dag_id=settings.dag_id,
        schedule=schedule_of(settings),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["driftwood", settings.dataset, "scheduled" if settings.role == "pipeline" else "retrain"],
        doc_md=doc_of(settings),
        default_args={"owner": "driftwood"},
        user_defined_macros=STEP_MACROS,
    ) as dag:
        tasks = chain_steps(settings.steps, steps_of(settings))
        if "train" in settings.steps and mlflow_evaluate_enabled():
            mlflow_evaluate_task(settings, tasks[settings.steps.index("train")], tasks[-1])
    return dag


def model_name_of(settings: DagSettings) -> str:
    """The registered model the steps write, as the CLI names it (tasks/src/config.ts ``modelNameFor``):
    DRIFTWOOD_MODEL_NAME when it speaks of this dataset (DRIFTWOOD_DATASET unset or naming it), else
    the contract's ``model.name``, else the dataset."""
    named = os.environ.get("DRIFTWOOD_MODEL_NAME")
    if named and os.environ.get("DRIFTWOOD_DATASET", settings.dataset) == settings.dataset:
        return named
    import yaml

    # Read once more here: the contract is valid (the factory made its DAGs from it).
    model = (yaml.safe_load(settings.contract.read_text()) or {}).get("model") or {}
    return str(model.get("name") or settings.dataset)


def mlflow_evaluate_enabled() -> bool:
    """``DRIFTWOOD_MLFLOW_EVALUATE``: ``on`` (the default) ends every DAG that trains with
    ``mlflow_evaluate``; ``off`` leaves it out (about half a minute of a worker per run, mostly
    importing MLflow). Anything else is a configuration error, raised where the DAGs are parsed."""
    value = (os.environ.get("DRIFTWOOD_MLFLOW_EVALUATE") or "on").strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"DRIFTWOOD_MLFLOW_EVALUATE must be on or off, not {value!r}")
    return value == "on"


def mlflow_evaluate_task(settings: DagSettings, train: Any, last: Any) -> Any:
    """``mlflow_evaluate`` after the DAG's last step (promote), downstream of train too: it runs once
    train succeeded and nothing after it failed, whether promote moved the alias or was skipped (a
    candidate the gate kept out is evaluated as well); never when train did not register a version."""
    task = step_task(
        mlflow_evaluate_step(model_name_of(settings)),
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    )
    train >> task
    if last is not train:
        last >> task
    return task


def build_all() -> dict[str, DAG]:
    found, problems = load_dag_settings()
    for problem in problems:
        # Also an import error of driftwood_contract_errors.py, so it shows in the UI.
        log.error("contract skipped, it makes no DAG: %s", problem)
    return {settings.dag_id: build_dag(settings) for settings in found}


# The DagBag collects the DAG objects found in the module's globals.
globals().update(build_all())
