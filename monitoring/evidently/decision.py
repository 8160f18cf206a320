"""Whether a window's drift should retrain the model: pure code, no clock, no I/O.

One drifted window is not enough: Evidently's tests are sensitive to sample size and a single noisy
hour would start a retraining storm (evidently issues #50, #509, #710). Drift is declared when it
holds in k of the last n windows that had enough rows; a cooldown spaces triggers out, and windows
that led to an earlier trigger never count again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Literal

from .errors import MonitorError

Action = Literal["trigger", "no_drift", "insufficient_rows", "cooldown"]


@dataclass(frozen=True)
class DecisionPolicy:
    k: int = 2
    n: int = 3
    min_rows: int = 500
    cooldown_minutes: int = 360

    def validate(self) -> None:
        if self.n < 1 or not 1 <= self.k <= self.n:
            raise MonitorError(
                "CONFIG_INVALID", f"setting decision.k/n: need 1 <= k <= n, got k={self.k} n={self.n}"
            )
        if self.min_rows < 1:
            raise MonitorError(
                "CONFIG_INVALID", f"setting decision.min_rows: expected >= 1, got {self.min_rows}"
            )
        if self.cooldown_minutes < 0:
            raise MonitorError("CONFIG_INVALID", "setting decision.cooldown_minutes: expected >= 0")


@dataclass(frozen=True)
class WindowOutcome:
    """What one drift run found for one window."""

    window_end: datetime
    rows: int
    dataset_drift: bool
    report_id: str


@dataclass(frozen=True)
class LastTrigger:
    """The last retrain request that was delivered: when it was sent (for the cooldown) and the end
    of the window that caused it (windows up to there are spent evidence)."""

    at: datetime
    window_end: datetime


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    drift_declared: bool
    drifted_windows: int
    windows_considered: int
    report_id: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def cooldown_until(
    last_trigger: LastTrigger | None, now: datetime, policy: DecisionPolicy
) -> datetime | None:
    """When the cooldown after the last delivered trigger ends, or None when it is over. One rule for
    every source of a retrain request: the sidecar's own windows and Alertmanager's alerts
    (alerts.py) read the same last trigger from the same decision log."""
    if last_trigger is None:
        return None
    wait = last_trigger.at + timedelta(minutes=policy.cooldown_minutes)
    return wait if now < wait else None


def decide_retrain(
    current: WindowOutcome,
    history: Sequence[WindowOutcome],
    last_trigger: LastTrigger | None,
    now: datetime,
    policy: DecisionPolicy,
) -> Decision:
    """Decides for ``current`` given earlier windows (any order; a rerun of the same window replaces
    its earlier outcome) and the last delivered trigger. Evidence is compared by window time, the
    cooldown by wall time, so replaying old windows behaves as it did live."""
    rid = current.report_id
    if current.rows < policy.min_rows:
        return Decision(
            "insufficient_rows",
            f"window has {current.rows} rows, fewer than decision.min_rows={policy.min_rows}; "
            "it does not count",
            False,
            0,
            0,
            rid,
        )
    eligible = {
        w.window_end: w
        for w in history
        if w.rows >= policy.min_rows
        and w.window_end < current.window_end
        and (last_trigger is None or w.window_end > last_trigger.window_end)
    }
    recent = sorted(eligible.values(), key=lambda w: w.window_end)[-(policy.n - 1) :] if policy.n > 1 else []
    considered = [*recent, current]
    drifted = sum(1 for w in considered if w.dataset_drift)
    tally = f"{drifted} of the last {len(considered)} windows drifted (need {policy.k} of {policy.n})"
    if drifted < policy.k:
        return Decision("no_drift", tally, False, drifted, len(considered), rid)
    wait = cooldown_until(last_trigger, now, policy)
    if last_trigger is not None and wait is not None:
        return Decision(
            "cooldown",
            f"{tally}; suppressed: last retrain trigger at {last_trigger.at.isoformat()}, "
            f"cooldown until {wait.isoformat()}",
            True,
            drifted,
            len(considered),
            rid,
        )
    return Decision("trigger", tally, True, drifted, len(considered), rid)
