"""The drift decision at traffic scale (exact_drift.py, window_scan.py): column summaries built chunk
by chunk give every feature the same test, score and verdict, and the window the same drift, as
Evidently's full computation on every row (real Evidently 0.7, its own default test choice)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring.evidently.column_summary import ColumnSummary, SummaryBuilder
from monitoring.evidently.drift import DriftSummary, run_report
from monitoring.evidently.exact_drift import exact_drift
from monitoring.evidently.prediction_log import Window, read_window
from monitoring.evidently.reference import prepare
from monitoring.evidently.window_scan import scan_window

NUM = tuple(f"n{i:02d}" for i in range(24))
CAT = tuple(f"c{i}" for i in range(6))


def rows(n: int, seed: int, drift: bool) -> pd.DataFrame:
    """30 features of several kinds. With ``drift`` a third of the numeric features move (by
    different amounts, two below the threshold), two categories change their mix; the rest stay."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i, c in enumerate(NUM):
        shift = (0.05 + 0.1 * (i % 4)) if drift and i % 3 == 0 else 0.0
        if i % 8 == 1:  # counts: few distinct integers
            data[c] = rng.poisson(3 + 10 * shift, n).astype(float)
        elif i % 8 == 2:  # three levels: a category in Evidently's eyes (Jensen-Shannon)
            data[c] = rng.choice([0.0, 1.0, 2.0], n, p=[0.5 - shift / 2, 0.3, 0.2 + shift / 2])
        else:
            data[c] = rng.normal(i + shift * (1 + i / 10), 1 + i / 10, n)
    for i, c in enumerate(CAT):
        levels = [f"v{j}" for j in range(3 + i)]
        p = np.ones(len(levels))
        if drift and i < 2:
            p[0] += 1.5
        data[c] = rng.choice(levels, n, p=p / p.sum())
    frame = pd.DataFrame(data)
    frame.loc[rng.random(n) < 0.01, "n05"] = np.nan  # nulls are dropped, as Evidently does
    frame["probability"] = rng.beta(2, 5 - (1.5 if drift else 0), n)
    return frame


def summarise(frame: pd.DataFrame, chunk: int) -> dict[str, ColumnSummary]:
    builder = SummaryBuilder((*NUM, "probability"), CAT)
    for start in range(0, len(frame), chunk):
        builder.add(frame.iloc[start : start + chunk])
    return builder.finish()


def typed(raw: pd.DataFrame) -> pd.DataFrame:
    out = prepare(raw, NUM, CAT)
    out["probability"] = raw["probability"].astype("float64")
    return out


def assert_same(exact: DriftSummary, full: DriftSummary) -> None:
    def key(s: DriftSummary) -> list[tuple[str, str, float, bool]]:
        return [(f.column, f.method, f.threshold, f.drifted) for f in s.features]

    assert key(exact) == key(full)
    for a, b in zip(exact.features, full.features, strict=True):
        assert a.score == pytest.approx(b.score, rel=1e-9, abs=1e-12), a.column
    assert (exact.drifted_columns, exact.dataset_drift) == (full.drifted_columns, full.dataset_drift)
    assert exact.drift_share == pytest.approx(full.drift_share)
    assert exact.prediction is not None and full.prediction is not None
    assert (exact.prediction.method, exact.prediction.drifted) == (
        full.prediction.method,
        full.prediction.drifted,
    )
    assert exact.prediction.score == pytest.approx(full.prediction.score, rel=1e-9)


@pytest.mark.parametrize("drift", [True, False])
def test_decision_from_chunked_summaries_equals_evidentlys_full_computation(drift: bool) -> None:
    ref, cur = typed(rows(20_000, 1, False)), typed(rows(20_000, 2, drift))
    # 8 of 30 features drift: the window drifts as a whole at a share of 0.25.
    share = 0.25
    exact = exact_drift(summarise(ref, 3000), summarise(cur, 7000), NUM, CAT, "probability", share)
    # Evidently on every row, choosing each column's test itself.
    _, full = run_report(cur, ref, NUM, CAT, "probability", share, {}, mode="drift_only")
    assert_same(exact, full)
    methods = {f.method for f in exact.features}
    assert methods == {"Wasserstein distance (normed)", "Jensen-Shannon distance"}
    drifted = {f.column for f in exact.features if f.drifted}
    if drift:
        # Drifted and undrifted features in one window; the window drifts as a whole only past 0.5.
        # n00 and n12 moved by 0.05 of their spread: below the 0.1 threshold, so not drifted.
        assert {"n03", "n09", "n18", "c0"} <= drifted and not {"n00", "n12", "n04", "c5"} & drifted
        assert exact.drifted_columns == 8 and exact.dataset_drift
        assert exact.prediction is not None and exact.prediction.drifted
    else:
        assert drifted == set() and not exact.dataset_drift


def test_small_reference_tests_are_evidentlys_own_on_the_rebuilt_rows() -> None:
    # Up to 1000 reference rows Evidently uses K-S, chi-square and Z: computed by its functions.
    ref, cur = typed(rows(600, 3, False)), typed(rows(900, 4, True))
    ref["n10"], cur["n10"] = (ref["n10"] > 8).astype(float), (cur["n10"] > 9).astype(float)
    exact = exact_drift(summarise(ref, 250), summarise(cur, 400), NUM, CAT, "probability", 0.5)
    _, full = run_report(cur, ref, NUM, CAT, "probability", 0.5, {}, mode="drift_only")
    assert_same(exact, full)
    assert {f.method for f in exact.features} == {"K-S p_value", "chi-square p_value", "Z-test p_value"}


T0 = datetime(2026, 11, 20, 8, tzinfo=UTC)


def write_log(root: Path, frame: pd.DataFrame, torn: bool = False) -> Window:
    """Two hourly partitions; ``torn`` puts a broken line in the second one."""
    step = timedelta(minutes=100) / len(frame)
    files: dict[Path, list[str]] = {}
    for i, rec in enumerate(frame.to_dict("records")):
        ts = T0 + step * i
        prob = rec.pop("probability")
        line = {"ts": ts.isoformat(), "model": {"name": "churn", "version": "1"}, "served": i % 11 != 0}
        line |= {
            "features": {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}
        }
        line |= {"probability": prob, "customer_token": f"t{i}"}
        path = root / f"dt={ts:%Y-%m-%d}" / f"hr={ts:%H}" / "predictions.jsonl"
        files.setdefault(path, []).append(json.dumps(line))
    for path, lines in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if torn and path.parent.name == "hr=09":
            lines.insert(5, '{"ts": "2026-11-20T09:00:01+00:00", "features": {"n00": 1')
        path.write_text("\n".join(lines) + "\n")
    return Window(T0 + timedelta(minutes=10), T0 + timedelta(minutes=100))


@pytest.mark.parametrize("torn", [False, True])
def test_window_scan_summarises_every_row_in_chunks_and_samples_for_the_report(
    tmp_path: Path, torn: bool
) -> None:
    window = write_log(tmp_path, rows(3000, 5, True), torn)
    whole = read_window(tmp_path, window, (*NUM, *CAT), "probability")
    expected = summarise(typed(whole.frame), len(whole.frame))

    def scan() -> object:
        return scan_window(
            tmp_path,
            window,
            NUM,
            CAT,
            "probability",
            sample_rows=500,
            seed=7,
            keep_labels=True,
            chunk_rows=600,
        )

    got = scan()
    assert got.rows == len(whole.frame) and got.skipped_lines == whole.skipped_lines == (1 if torn else 0)
    for c, s in expected.items():
        assert np.array_equal(got.summaries[c].values, s.values), c
        assert np.array_equal(got.summaries[c].counts, s.counts), c
    assert got.sampled and len(got.sample) == 500 and list(got.sample.columns) == [*NUM, *CAT, "probability"]
    # The sample is made of the window's rows, and the same window gives the same sample.
    assert set(got.sample["n00"]) <= set(whole.frame["n00"])
    assert got.sample.equals(scan().sample)
    assert got.labels_frame["customer_token"].tolist() == whole.frame["customer_token"].tolist()
    assert (got.model_name, got.model_version, got.files_read) == ("churn", "1", 2)
