"""BTC forecast: hourly price extraction and ingest, and a daily retrain of the forecast model.

Two DAGs, built from the same step helper as the churn ones (runner, retries with backoff,
timeouts, Slack notifications; exit code 99 marks a task *skipped*):

* ``btc_forecast`` — every hour, ``extract → ingest``. ``extract`` fetches the OHLCV candles of the
  run's data interval (the hour that just closed) from the price source in the Airflow Variable
  ``driftwood_btc_source`` (an exchange URL, or the lake key of a dropped file), validates them,
  quarantines what fails and lands one ``raw/btc/dt=…/hr=…/candles.csv`` per hour; ``ingest``
  loads everything landed before the interval's end that is not loaded yet, exactly once.
* ``btc_retrain`` — every day at 00:30 UTC, ``train → promote``: trains the forecast model on the
  snapshot of the candles closed by the run's end (``--snapshot-as-of``: made first, or reused; the
  run records it) and moves the ``champion`` alias when it passes the gate; a gate not passed marks
  ``promote`` as skipped and the champion stays.

Gaps (hours the source did not have) are in the extract report under ``reports/extract/btc/``;
re-running a DAG run for an hour is safe (the same candles land as the same bytes).
See docs/datasets.md ("Price data: `extract`") and docs/orchestration.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag
from airflow.timetables.trigger import CronTriggerTimetable
from driftwood_steps import BTC_STEPS, chain_steps

HOURLY_STEPS = ("extract", "ingest")
DAILY_STEPS = ("train", "promote")


@dag(
    dag_id="btc_forecast",
    # A run at the top of each hour covers the hour that just closed: [H-1, H).
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC", interval=timedelta(hours=1)),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["driftwood", "btc", "scheduled"],
    doc_md=__doc__,
    default_args={"owner": "driftwood"},
)
def btc_forecast() -> None:
    chain_steps(HOURLY_STEPS, BTC_STEPS)


@dag(
    dag_id="btc_retrain",
    # After the midnight hour's extract and ingest, on a full day of candles.
    schedule=CronTriggerTimetable("30 0 * * *", timezone="UTC", interval=timedelta(days=1)),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["driftwood", "btc", "retrain"],
    doc_md=__doc__,
    default_args={"owner": "driftwood"},
)
def btc_retrain() -> None:
    chain_steps(DAILY_STEPS, BTC_STEPS)


btc_forecast()
btc_retrain()
