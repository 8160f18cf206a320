"""The as-of a pipeline run's steps get (``RUN_END`` in dags/driftwood_steps.py), rendered by Airflow's own
template environment: the data interval's end for a scheduled run, the newest landed partition's end
for a run the lake's landing events started (posted by the lander, or made by the lake queue's watcher
from S3 notifications), the trigger time for a manual run, and an error, never a shell word, for an
event whose as-of is not a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
from airflow.sdk.definitions._internal.templater import create_template_env
from airflow.sdk.execution_time import macros
from driftwood_steps import RUN_END, STEP_MACROS

RUN_AFTER = datetime(2026, 12, 7, 12, 34, 56, tzinfo=UTC)


def landing(as_of: str) -> SimpleNamespace:
    return SimpleNamespace(extra={"driftwood_as_of": as_of, "from_rest_api": True})


def notified(*keys: str) -> SimpleNamespace:
    """An event the lake queue's watcher made: S3 notifications, keys URL-encoded as S3 sends them."""
    bodies = [
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": k}}}]})
        for k in keys
    ]
    batch = [{"MessageId": str(i), "Body": body} for i, body in enumerate(bodies)]
    return SimpleNamespace(
        extra={"from_trigger": True, "payload": {"status": "success", "message_batch": batch}}
    )


def render(interval_end: datetime | None, events: list[Any]) -> str:
    run = SimpleNamespace(data_interval_end=interval_end, run_after=RUN_AFTER, consumed_asset_events=events)
    return create_template_env().from_string(RUN_END).render(dag_run=run, macros=macros, **STEP_MACROS)


@pytest.mark.parametrize(
    ("interval_end", "events", "expected"),
    [
        # A scheduled run: the end of its data interval.
        (datetime(2026, 11, 15, 6, tzinfo=UTC), [], "2026-11-15T06:00:00+00:00"),
        # Started by a landing: the landed partition's end, not the time the run started.
        (None, [landing("2026-11-15T06:00:00+00:00")], "2026-11-15T06:00:00+00:00"),
        # Several landings consumed by one run: the newest; events without an as-of (the drift
        # monitor's) do not count.
        (
            None,
            [
                landing("2026-11-15T06:00:00+00:00"),
                SimpleNamespace(extra={"source": "drift-monitor"}),
                landing("2026-11-15T09:00:00+00:00"),
                landing("2026-11-15T07:00:00+00:00"),
            ],
            "2026-11-15T09:00:00+00:00",
        ),
        # Started by the lake's S3 notifications: the newest notified partition's end, whether S3 kept
        # the slashes (AWS) or encoded them too (moto); a key outside any partition does not count.
        (
            None,
            [
                notified("lake/raw/churn/dt%3D2026-11-15/hr%3D05/customers.csv", "lake/raw/churn/README"),
                notified("lake%2Fraw%2Fchurn%2Fdt%3D2026-11-15%2Fhr%3D07%2Fevents.csv"),
            ],
            "2026-11-15T08:00:00+00:00",
        ),
        (None, [notified("raw/churn/notes.txt")], RUN_AFTER.isoformat()),
        # A landing posted and a notification consumed by one run: the newer of the two.
        (
            None,
            [landing("2026-11-15T06:00:00+00:00"), notified("raw/churn/dt%3D2026-11-15/hr%3D23/a.csv")],
            "2026-11-16T00:00:00+00:00",
        ),
        # A manual run, or one the drift asset started: the time it was triggered.
        (None, [SimpleNamespace(extra={"source": "drift-monitor"})], RUN_AFTER.isoformat()),
        (None, [], RUN_AFTER.isoformat()),
    ],
)
def test_the_run_end_a_step_gets(interval_end: datetime | None, events: list[Any], expected: str) -> None:
    assert render(interval_end, events) == expected


def test_an_as_of_that_is_not_a_time_fails_the_render_and_never_reaches_the_command() -> None:
    with pytest.raises(ValueError, match="Invalid isoformat"):
        render(None, [landing("2026-11-15T06:00:00+00:00'; touch /tmp/owned; '")])


def test_the_process_runner_can_quote_it() -> None:
    # The process runner single-quotes each argument before Jinja renders it: a single quote inside
    # the template would split it.
    assert "'" not in RUN_END
    jinja2.Environment().parse(RUN_END)


def test_a_run_without_the_list_of_consumed_events_takes_its_trigger_time() -> None:
    run = SimpleNamespace(data_interval_end=None, run_after=RUN_AFTER)
    rendered = create_template_env().from_string(RUN_END).render(dag_run=run, macros=macros, **STEP_MACROS)
    assert rendered == RUN_AFTER.isoformat()


def test_a_dag_without_the_macros_renders_its_trigger_time() -> None:
    # The scoring DAG consumes no landings and does not pass STEP_MACROS.
    run = SimpleNamespace(data_interval_end=None, run_after=RUN_AFTER, consumed_asset_events=[])
    assert (
        create_template_env().from_string(RUN_END).render(dag_run=run, macros=macros) == RUN_AFTER.isoformat()
    )
