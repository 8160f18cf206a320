"""Churn pipeline: ingest → train → promote.

Every hour, loads the raw customer-activity files that landed in the lake up to the end of the run's
data interval (missed hours load too, in order, exactly once), trains a TF.js churn model on
point-in-time features, records it in MLflow with a registered model version, and promotes that
version to the ``champion`` alias when it passes the gate. A gate not passed marks ``promote`` as
skipped, not failed.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import dag

from driftwood_steps import step_task


@dag(
    dag_id="churn_pipeline",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["driftwood", "churn"],
    doc_md=__doc__,
    default_args={"owner": "driftwood", "retries": 2},
)
def churn_pipeline() -> None:
    ingest = step_task("ingest", ["--dataset", "churn", "--until", "'{{ data_interval_end }}'"])
    train = step_task("train", ["--dataset", "churn"])
    promote = step_task("promote", ["--alias", "champion"])
    ingest >> train >> promote


churn_pipeline()
