"""A/B experiment DAGs: ``<dataset>_experiments`` for every tabular contract.

Each daily run takes one look at every running A/B experiment of the dataset (``driftwood experiment
--dataset <dataset> --all-running --as-of <the run's logical date>``): the experiment's customers'
first predictions from the prediction log up to that time, their labels from the warehouse, the
always-valid sequential test and the decision (promote / keep / inconclusive), recorded on the
experiment's MLflow run. A re-run of the same logical date (or of an earlier one) adds no look: the
test's error rate holds only if every look is counted once. A ``promote`` decision of an experiment
declared with ``on_decision: promote`` moves ``champion`` through evaluate and the promotion gate,
the same path as the pipeline's promote step; a promotion that failed is taken up again by the next
try. With no running experiment the run does nothing.

See docs/experiments.md.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG
from driftwood_daily import daily_dag, tabular_datasets
from driftwood_steps import RUN_END, Step, step_task

# Daily, after the night's label feed and batch scoring (05:00): the labels of the day before are in.
SCHEDULE = "0 6 * * *"


def experiment_step(dataset: str) -> Step:
    # Memory for the promotion gate, which scores the winner and the champion on the holdout.
    args = ("--dataset", dataset, "--all-running", "--as-of", RUN_END)
    return Step("experiment", args, timeout=timedelta(minutes=45), memory=("1Gi", "2Gi"))


def doc_of(dataset: str) -> str:
    return "\n".join(
        [
            f"# {dataset}_experiments: the daily look at `{dataset}`'s running A/B experiments",
            "",
            f"`driftwood experiment --dataset {dataset} --all-running --as-of <logical date>`: one look per "
            "running experiment and logical date, its decision on the experiment's MLflow run "
            "(`driftwood-ab`); `on_decision: promote` moves `champion` through the promotion gate.",
            "",
            "Made by `dags/driftwood_experiments.py`; see docs/experiments.md.",
        ]
    )


def build_experiments_dag(dataset: str) -> DAG:
    with daily_dag(dataset, "experiments", SCHEDULE, doc_of(dataset)) as dag:
        step_task(experiment_step(dataset))
    return dag


def build_all() -> dict[str, DAG]:
    return {f"{d}_experiments": build_experiments_dag(d) for d in tabular_datasets()}


# The DagBag collects the DAG objects found in the module's globals.
globals().update(build_all())
