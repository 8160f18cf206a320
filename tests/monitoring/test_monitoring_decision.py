"""The retrain decision (k of the last n windows, minimum rows, cooldown) on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.evidently.decision import DecisionPolicy, LastTrigger, WindowOutcome, decide_retrain
from monitoring.evidently.errors import MonitorError

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
POLICY = DecisionPolicy(k=2, n=3, min_rows=100, cooldown_minutes=360)


def w(hour: int, drift: bool, rows: int = 1000) -> WindowOutcome:
    return WindowOutcome(T0 + timedelta(hours=hour), rows, drift, f"churn-{hour}")


# (name, history, current, last trigger (sent at, its window's end; hours from T0) or None,
#  expected action, drifted, considered)
CASES = [
    ("one drifted window is noise", [], w(0, True), None, "no_drift", 1, 1),
    ("two of three drifted triggers", [w(-2, False), w(-1, True)], w(0, True), None, "trigger", 2, 3),
    ("drift need not be consecutive", [w(-2, True), w(-1, False)], w(0, True), None, "trigger", 2, 3),
    (
        "earlier drift still counts when now is calm",
        [w(-2, True), w(-1, True)],
        w(0, False),
        None,
        "trigger",
        2,
        3,
    ),
    (
        "only the last n windows count",
        [w(-4, True), w(-3, True), w(-2, False), w(-1, False)],
        w(0, True),
        None,
        "no_drift",
        1,
        3,
    ),
    ("a small window does not count", [w(-1, True)], w(0, True, rows=99), None, "insufficient_rows", 0, 0),
    (
        "small windows in history are skipped",
        [w(-2, True, rows=5), w(-1, False)],
        w(0, True),
        None,
        "no_drift",
        1,
        2,
    ),
    ("cooldown suppresses a repeat", [w(-1, True)], w(0, True), (-3, -3), "cooldown", 2, 2),
    ("after the cooldown fresh evidence triggers", [w(-1, True)], w(0, True), (-7, -7), "trigger", 2, 2),
    (
        "windows before the last trigger never count again",
        [w(-3, True), w(-2, True)],
        w(0, True),
        (-1.5, -2),
        "no_drift",
        1,
        1,
    ),
    (
        "a rerun of the same window replaces it",
        [w(-1, False), w(0, True)],
        w(0, True),
        None,
        "no_drift",
        1,
        2,
    ),
    (
        "boundary: exactly min_rows counts",
        [w(-1, True, rows=100)],
        w(0, True, rows=100),
        None,
        "trigger",
        2,
        2,
    ),
]


@pytest.mark.parametrize(
    ("name", "history", "current", "last", "action", "drifted", "considered"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_decide_retrain(
    name: str,
    history: list[WindowOutcome],
    current: WindowOutcome,
    last: tuple[float, float] | None,
    action: str,
    drifted: int,
    considered: int,
) -> None:
    trig = LastTrigger(T0 + timedelta(hours=last[0]), T0 + timedelta(hours=last[1])) if last else None
    d = decide_retrain(current, history, trig, T0 + timedelta(minutes=5), POLICY)
    assert (d.action, d.drifted_windows, d.windows_considered) == (action, drifted, considered), d.reason
    assert d.drift_declared == (action in ("trigger", "cooldown"))
    assert d.report_id == current.report_id


def test_evidence_is_judged_by_window_time_so_a_replay_behaves_as_live() -> None:
    # Windows replayed two days later: the trigger was sent at wall time +48h for the window ending
    # at -2h; the windows after it are fresh evidence even though they end before the send time.
    trig = LastTrigger(T0 + timedelta(hours=48), T0 + timedelta(hours=-2))
    d = decide_retrain(w(0, True), [w(-2, True), w(-1, True)], trig, T0 + timedelta(hours=49), POLICY)
    assert (d.action, d.drifted_windows, d.windows_considered) == ("cooldown", 2, 2)


def test_k_of_one_window_policy_reacts_to_one_window() -> None:
    d = decide_retrain(w(0, True), [], None, T0, DecisionPolicy(k=1, n=1, min_rows=1, cooldown_minutes=0))
    assert d.action == "trigger"


@pytest.mark.parametrize(
    ("policy", "setting"),
    [
        (DecisionPolicy(k=3, n=2), "decision.k/n"),
        (DecisionPolicy(k=0, n=2), "decision.k/n"),
        (DecisionPolicy(min_rows=0), "decision.min_rows"),
        (DecisionPolicy(cooldown_minutes=-1), "decision.cooldown_minutes"),
    ],
)
def test_bad_policy_names_the_setting(policy: DecisionPolicy, setting: str) -> None:
    with pytest.raises(MonitorError, match=setting):
        policy.validate()
