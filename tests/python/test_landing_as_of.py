"""The as-of a pipeline run's steps get (``RUN_END`` in dags/driftwood_steps.py), rendered by Airflow's own
template environment: the data interval's end for a scheduled run, the newest landed partition's end
for a run the lake's landing events started, the trigger time for a manual run, and an error, never a
shell word, for an event whose as-of is not a time."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
from airflow.sdk.definitions._internal.templater import create_template_env
from airflow.sdk.execution_time import macros
from driftwood_steps import RUN_END

RUN_AFTER = datetime(2026, 12, 7, 12, 34, 56, tzinfo=UTC)


def landing(as_of: str) -> SimpleNamespace:
    return SimpleNamespace(extra={"driftwood_as_of": as_of, "from_rest_api": True})


def render(interval_end: datetime | None, events: list[Any]) -> str:
    run = SimpleNamespace(data_interval_end=interval_end, run_after=RUN_AFTER, consumed_asset_events=events)
    return create_template_env().from_string(RUN_END).render(dag_run=run, macros=macros)


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
    rendered = create_template_env().from_string(RUN_END).render(dag_run=run, macros=macros)
    assert rendered == RUN_AFTER.isoformat()
