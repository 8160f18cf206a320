"""What the daily per-dataset DAGs share (``<dataset>_scoring``, ``<dataset>_experiments``).

Both run once a day on a cron in UTC, one run at a time, never catching up on missed days, for
every tabular contract; only their steps and schedule differ.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, CronTriggerTimetable
from driftwood_contracts import load_dag_settings

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def tabular_datasets() -> list[str]:
    """The datasets of the valid tabular contracts; the factory reports the problems
    (driftwood_contract_errors)."""
    found, _problems = load_dag_settings()
    return sorted({s.dataset for s in found if not s.forecast})


def daily_dag(dataset: str, kind: str, cron: str, doc_md: str) -> DAG:
    """``<dataset>_<kind>``, on ``cron`` in UTC; its tasks are added inside ``with``."""
    return DAG(
        dag_id=f"{dataset}_{kind}",
        schedule=CronTriggerTimetable(cron, timezone="UTC"),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["driftwood", dataset, "scheduled", kind],
        doc_md=doc_md,
        default_args={"owner": "driftwood"},
    )
