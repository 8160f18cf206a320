"""Churn pipeline: ingest → snapshot → features → train → evaluate → promote, every hour.

Loads the raw customer-activity files that landed in the lake up to the end of the run's data
interval (missed hours load too, in order, exactly once, so a paused or late scheduler catches up
without `catchup`), materialises the training table as of that time as an immutable snapshot,
writes the model-ready features of the snapshot to the lake, trains a TF.js churn model on the
snapshot, records it in MLflow with a registered model version, scores it against the champion on
the same holdout, and promotes it to the ``champion`` alias when it passes the gate. A gate not
passed marks ``promote`` as skipped, not failed, and the champion stays.

Runner: ``DRIFTWOOD_RUNNER`` or the Variable ``driftwood_runner`` (process, docker, kubernetes).
Notifications: the Slack connection ``driftwood_slack``. See docs/orchestration.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import dag
from driftwood_steps import chain_steps

STEPS = ("ingest", "snapshot", "features", "train_on_snapshot", "evaluate", "promote")


@dag(
    dag_id="churn_pipeline",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["driftwood", "churn", "scheduled"],
    doc_md=__doc__,
    default_args={"owner": "driftwood"},
)
def churn_pipeline() -> None:
    chain_steps(STEPS)


churn_pipeline()
