"""Churn pipeline: ingest → train → promote, every hour.

Loads the raw customer-activity files that landed in the lake up to the end of the run's data
interval (missed hours load too, in order, exactly once, so a paused or late scheduler catches up
without `catchup`), trains a TF.js churn model on point-in-time features, records it in MLflow with
a registered model version, and promotes that version to the ``champion`` alias when it passes the
gate. A gate not passed marks ``promote`` as skipped, not failed, and the champion stays.

Runner: ``DRIFTWOOD_RUNNER`` or the Variable ``driftwood_runner`` (process, docker, kubernetes).
Notifications: the Slack connection ``driftwood_slack``. See docs/orchestration.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import dag
from driftwood_steps import chain_steps

# snapshot, features and evaluate join this list (and driftwood_steps.CHURN_STEPS) as they land.
STEPS = ("ingest", "train", "promote")


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
