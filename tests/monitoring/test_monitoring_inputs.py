"""Inputs the sidecar must survive: a messy prediction log, a bad config, a wrong webhook secret."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from monitoring.evidently.config import WebhookConfig, parse_config
from monitoring.evidently.errors import MonitorError
from monitoring.evidently.prediction_log import Window, read_window, window_ending
from monitoring.evidently.reference import ReferenceCache, load_reference, reference_hash
from monitoring.evidently.webhook import send_signed, sign, verify

W = Window(datetime(2026, 11, 20, 10, 30, tzinfo=UTC), datetime(2026, 11, 20, 11, 30, tzinfo=UTC))


def test_log_reader_skips_bad_lines_shadows_and_other_windows(tmp_path: Path) -> None:
    good = {
        "ts": "2026-11-20T10:45:00.000Z",
        "served": True,
        "model": {"name": "churn", "version": "7"},
        "features": {"tenure_days": 10, "plan": "pro"},
        "probability": 0.25,
    }
    lines_10 = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "ts": "2026-11-20T10:10:00Z"}),  # before the window
        json.dumps({**good, "served": False}),  # shadow prediction
        json.dumps({**good, "ts": None}),
        json.dumps({**good, "features": "oops", "probability": "high"}),
    ]
    lines_11 = [
        json.dumps({**good, "ts": "2026-11-20T11:29:59+00:00", "model": {"name": "churn", "version": "8"}}),
        json.dumps({**good, "ts": "2026-11-20T11:30:00Z"}),
    ]  # end is exclusive
    for hr, lines in (("10", lines_10), ("11", lines_11)):
        d = tmp_path / "dt=2026-11-20" / f"hr={hr}"
        d.mkdir(parents=True)
        (d / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    got = read_window(tmp_path, W, ("tenure_days", "plan", "absent"), "probability")
    assert got.files_read == 2 and got.skipped_lines == 2
    assert len(got.frame) == 3
    assert got.frame["tenure_days"][0] == 10 and pd.isna(got.frame["tenure_days"][1])
    assert got.frame["absent"].isna().all()
    assert pd.isna(got.frame["probability"][1])
    assert (got.model_name, got.model_version) == ("churn", "7")
    with_shadows = read_window(tmp_path, W, ("tenure_days",), "probability", served_only=False)
    assert len(with_shadows.frame) == 4


def test_windows_align_to_their_size() -> None:
    w = window_ending(datetime(2026, 11, 20, 11, 42, tzinfo=UTC), 60)
    assert (w.start.hour, w.end.hour, w.end.minute) == (10, 11, 0)
    w = window_ending(datetime(2026, 11, 20, 11, 42, tzinfo=UTC), 15)
    assert (w.start.minute, w.end.minute) == (15, 30)


BASE = {
    "dataset": "churn",
    "predictions_dir": "p",
    "lake_dir": "l",
    "reference": "r.parquet",
    "columns": {"numerical": ["a"], "categorical": ["b"]},
}


@pytest.mark.parametrize(
    ("patch", "setting"),
    [
        ({"columns": {"numerical": "a"}}, "columns.numerical"),
        ({"columns": {"numerical": ["a"], "categorical": ["a"]}}, "columns"),
        ({"window_minutes": 0}, "window_minutes"),
        ({"window_minutes": "60"}, "window_minutes"),
        ({"drift_share": 1.5}, "drift_share"),
        ({"decision": {"k": 4, "n": 3}}, "decision.k/n"),
        ({"webhook": {"kind": "email"}}, "webhook.kind"),
        ({"webhook": {"kind": "signed", "url": "http://x"}}, "webhook.secret_file"),
        ({"webhook": {"kind": "airflow"}}, "webhook.url"),
        ({"dataset": "churn/../x"}, "dataset"),
        ({"report_mode": "fast"}, "report_mode"),
    ],
)
def test_bad_config_names_the_setting(patch: dict[str, Any], setting: str) -> None:
    with pytest.raises(MonitorError, match=f"setting {setting}"):
        parse_config({**BASE, **patch}, Path("/tmp"))
    missing = {k: v for k, v in BASE.items() if k != "reference"}
    with pytest.raises(MonitorError, match="setting reference: required"):
        parse_config(missing, Path("/tmp"))


def test_reference_loader_reads_csv_parquet_and_folders_and_hashes_content(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", None], "probability": [0.1, 0.2, 0.3]})
    df.to_csv(tmp_path / "ref.csv", index=False)
    (tmp_path / "parts").mkdir()
    df.iloc[:2].to_parquet(tmp_path / "parts" / "part-0.parquet")
    df.iloc[2:].to_parquet(tmp_path / "parts" / "part-1.parquet")
    assert load_reference(str(tmp_path / "ref.csv"))["a"].tolist() == [1.0, 2.0, 3.0]
    assert len(load_reference(f"file://{tmp_path / 'parts'}")) == 3
    h = reference_hash(str(tmp_path / "ref.csv"))
    df.assign(a=[1.0, 2.0, 4.0]).to_csv(tmp_path / "ref2.csv", index=False)
    assert h != reference_hash(str(tmp_path / "ref2.csv")) and len(h) == 16
    with pytest.raises(MonitorError, match="does not exist"):
        load_reference(str(tmp_path / "missing.parquet"))
    with pytest.raises(MonitorError, match=r"columns \['c'\]"):
        ReferenceCache().get(str(tmp_path / "ref.csv"), "probability", ("a", "c"), ("b",), 0)


def test_reference_cache_prepares_once_and_samples_with_a_record(tmp_path: Path) -> None:
    pd.DataFrame({"a": range(100), "b": ["x"] * 100}).to_parquet(tmp_path / "r.parquet")
    loads: list[str] = []

    def counting_loader(uri: str) -> pd.DataFrame:
        loads.append(uri)
        return load_reference(uri)

    cache = ReferenceCache(counting_loader)
    first = cache.get(str(tmp_path / "r.parquet"), "probability", ("a",), ("b",), 40)
    second = cache.get(str(tmp_path / "r.parquet"), "probability", ("a",), ("b",), 40)
    assert first is second and len(loads) == 1 and (cache.hits, cache.misses) == (1, 1)
    assert (len(first.frame), first.rows_total, first.sampled) == (40, 100, True)
    assert "probability" not in first.frame.columns  # no model score in this reference


def test_signature_round_trip_and_a_receiver_with_another_secret_refuses(
    tmp_path: Path, receiver_factory: Any
) -> None:
    secret = b"0123456789abcdef-secret"
    body = b'{"report_id":"x"}'
    assert verify(secret, "1700000000", body, sign(secret, "1700000000", body))
    assert not verify(secret, "1700000001", body, sign(secret, "1700000000", body))
    (tmp_path / "s").write_bytes(secret)
    receiver = receiver_factory(7603, b"a-different-secret-value")
    hook = WebhookConfig(kind="signed", url=receiver.url, secret_file=str(tmp_path / "s"))
    delivery = send_signed(hook, {"report_id": "churn-1"}, "1700000000")
    assert (delivery.ok, delivery.status, receiver.rejected) == (False, 401, 1)
    (tmp_path / "short").write_bytes(b"short")
    with pytest.raises(MonitorError, match=r"webhook\.secret_file"):
        send_signed(
            WebhookConfig(kind="signed", url=receiver.url, secret_file=str(tmp_path / "short")), {}, "1"
        )
    down = send_signed(
        WebhookConfig(kind="signed", url="http://127.0.0.1:7699", secret_file=str(tmp_path / "s")),
        {"report_id": "r"},
        "1",
    )
    assert (down.ok, down.status) == (False, 0)
