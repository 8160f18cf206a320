"""Churn retrain: train → promote on demand, from the data already in the warehouse.

No time schedule. A run starts when:

* the asset ``churn_drift`` (``driftwood://churn/drift``) gets an event — the drift monitor posts one
  with ``POST /api/v2/assets/events``; or
* someone triggers it through the REST API (``POST /api/v2/dags/churn_retrain/dagRuns``), e.g. the
  serving API's ``POST /train`` or an operator.

It reuses the pipeline's steps from training on (the same helper, runner and limits); a gate not
passed marks ``promote`` as skipped and the champion stays. See docs/orchestration.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import Asset, dag
from driftwood_steps import chain_steps

DRIFT_ASSET = Asset(name="churn_drift", uri="driftwood://churn/drift", group="driftwood")
# snapshot, features and evaluate join this list as they land, ahead of promote.
STEPS = ("train", "promote")


@dag(
    dag_id="churn_retrain",
    schedule=[DRIFT_ASSET],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["driftwood", "churn", "retrain"],
    doc_md=__doc__,
    default_args={"owner": "driftwood"},
)
def churn_retrain() -> None:
    chain_steps(STEPS)


churn_retrain()
