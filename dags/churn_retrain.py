"""Churn retrain: train → promote on demand, on a snapshot of the data already in the warehouse.

No time schedule. A run starts when:

* the asset ``churn_drift`` (``driftwood://churn/drift``) gets an event — the drift monitor posts one
  with ``POST /api/v2/assets/events``; or
* someone triggers it through the REST API (``POST /api/v2/dags/churn_retrain/dagRuns``), e.g. the
  serving API's ``POST /train`` or an operator.

``train --snapshot-as-of latest`` freezes the newest training table the loaded data allows (the last
cutoff whose labels are all in) as a snapshot, or reuses it when it exists, and trains on it — so
the version records the data it saw, which the drift monitor uses as its reference; promote gates
it. It reuses the pipeline's steps (the same helper, runner and limits). A gate not passed marks
``promote`` as skipped and the champion stays. See docs/orchestration.md.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from airflow.sdk import Asset, dag
from driftwood_steps import CHURN_STEPS, chain_steps

DRIFT_ASSET = Asset(name="churn_drift", uri="driftwood://churn/drift", group="driftwood")
STEPS = ("train_on_snapshot", "promote")
RETRAIN_STEPS = {
    **CHURN_STEPS,
    # A retrain has no data interval of its own: it takes the newest data there is.
    "train_on_snapshot": replace(
        CHURN_STEPS["train_on_snapshot"], args=("--dataset", "churn", "--snapshot-as-of", "latest")
    ),
}


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
    chain_steps(STEPS, RETRAIN_STEPS)


churn_retrain()
