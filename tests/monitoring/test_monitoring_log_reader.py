"""The prediction log reader's two paths give the same window: Arrow's JSON reader for clean files,
the line-by-line reader for files Arrow refuses (a torn line, a field with two types)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from monitoring.evidently.prediction_log import Window, _read_file_fast, _read_file_lines, read_window

W = Window(datetime(2026, 11, 20, 10, 15, tzinfo=UTC), datetime(2026, 11, 20, 10, 45, tzinfo=UTC))
FEATURES = ("tenure_days", "monthly_charges", "plan", "absent")


def lines() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(60):
        out.append(
            {
                "ts": f"2026-11-20T10:{i:02d}:30.000Z",
                "served": i % 7 != 0,
                "model": {"name": "churn", "version": "3" if i % 5 else "4", "alias": "champion"},
                "customer_token": None if i % 4 == 0 else f"tok{i}",
                # ints and floats mixed, a null, a feature missing on some lines
                "features": {
                    "tenure_days": i if i % 2 else i + 0.5,
                    "monthly_charges": None if i == 20 else 30.0,
                }
                | ({"plan": "basic"} if i % 3 else {}),
                "probability": i / 60,
                "label": 0,
            }
        )
    out.append({"ts": None, "features": {}, "probability": 0.1})
    return out


@pytest.mark.parametrize("stamp", [".000Z", "Z", "+00:00", ""])
def test_both_readers_agree_on_a_clean_file(tmp_path: Path, stamp: str) -> None:
    # Arrow reads whole-second times as timestamps and fractional ones as text: both must agree.
    path = tmp_path / "predictions.jsonl"
    recs = [{**r, "ts": r["ts"].replace(".000Z", stamp)} if isinstance(r["ts"], str) else r for r in lines()]
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    for served_only in (True, False):
        fast, fast_models, fast_skipped = _read_file_fast(path, W, FEATURES, "probability", served_only)
        slow, slow_models, slow_skipped = _read_file_lines(path, W, FEATURES, "probability", served_only)
        pd.testing.assert_frame_equal(fast, slow, check_dtype=False)
        assert (fast_models, fast_skipped) == (slow_models, slow_skipped) and fast_skipped == 1
    assert len(fast) == 30 and fast["absent"].isna().all()


def test_a_file_arrow_refuses_is_read_line_by_line(tmp_path: Path) -> None:
    part = tmp_path / "dt=2026-11-20" / "hr=10"
    part.mkdir(parents=True)
    good = [json.dumps(r) for r in lines()]
    (part / "predictions.jsonl").write_text(
        "\n".join([*good[:10], '{"ts": "2026-11-20T10:2', *good[10:]]) + "\n"
    )
    got = read_window(tmp_path, W, FEATURES, "probability", served_only=False)
    assert len(got.frame) == 30 and got.skipped_lines == 2
    assert (got.model_name, got.model_version) == ("churn", "3")
