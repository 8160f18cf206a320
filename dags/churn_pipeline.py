"""Churn pipeline: ingest → snapshot → features → train → evaluate → promote, every hour and on new data.

Loads the raw customer-activity files that landed in the lake up to the end of the run's data
interval (missed hours load too, in order, exactly once, so a paused or late scheduler catches up
without `catchup`), materialises the training table as of that time as an immutable snapshot,
writes the model-ready features of the snapshot to the lake, trains a TF.js churn model on the
snapshot, records it in MLflow with a registered model version, scores it against the champion on
the same holdout, and promotes it to the ``champion`` alias when it passes the gate. A gate not
passed marks ``promote`` as skipped, not failed, and the champion stays.

Runs start every hour, and also when new raw data lands: the asset ``churn_raw``
(``driftwood://churn/raw``, the lake's ``raw/churn/`` prefix) gets an event. A lander posts one
after writing its files, with ``POST /api/v2/assets/events {"asset_id": <id>, "extra": {"keys":
[...]}}`` (the id from ``GET /api/v2/assets?uri_pattern=driftwood://churn/raw``; a user with the op
role). An asset-triggered run has no data interval: it loads and snapshots up to the time it was
triggered (``run_after``). Runs never overlap, and the ingest loads each file once, so an event and
the hourly run arriving together load nothing twice.

Runner: ``DRIFTWOOD_RUNNER`` or the Variable ``driftwood_runner`` (process, docker, kubernetes).
Notifications: the Slack connection ``driftwood_slack``. See docs/orchestration.md and docs/data.md.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag
from driftwood_steps import CHURN_STEPS, chain_steps

RAW_ASSET = Asset(name="churn_raw", uri="driftwood://churn/raw", group="driftwood")
STEPS = ("ingest", "snapshot", "features", "train_on_snapshot", "evaluate", "promote")
# The end of the data interval, or for an asset-triggered run (no interval) the time it was triggered.
RUN_END = "{{ (dag_run.data_interval_end or dag_run.run_after).isoformat() }}"
PIPELINE_STEPS = {
    **CHURN_STEPS,
    "ingest": replace(CHURN_STEPS["ingest"], args=("--dataset", "churn", "--until", RUN_END)),
    "snapshot": replace(CHURN_STEPS["snapshot"], args=("--dataset", "churn", "--as-of", RUN_END)),
    "features": replace(CHURN_STEPS["features"], args=("--dataset", "churn", "--snapshot-as-of", RUN_END)),
    "train_on_snapshot": replace(
        CHURN_STEPS["train_on_snapshot"], args=("--dataset", "churn", "--snapshot-as-of", RUN_END)
    ),
}


@dag(
    dag_id="churn_pipeline",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("@hourly", timezone="UTC"), assets=[RAW_ASSET]
    ),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["driftwood", "churn", "scheduled"],
    doc_md=__doc__,
    default_args={"owner": "driftwood"},
)
def churn_pipeline() -> None:
    chain_steps(STEPS, PIPELINE_STEPS)


churn_pipeline()
