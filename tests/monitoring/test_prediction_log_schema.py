"""The drift sidecar's prediction-log reader against the line schema the API's writer is tested with.

contracts/prediction-log.schema.json describes one line; tests/fixtures/prediction-log/predictions.jsonl
holds lines the real writer made (tests/unit/prediction-log-schema.test.ts makes them and checks that
the committed bytes are still what it makes). Here the same bytes are checked against the schema and
fed to ``read_window``, so a change of the line that breaks the reader fails on one side or the other.

The evidently venv has no ``jsonschema``; ``conforms`` checks the draft-07 keywords the schema uses
(type, required, properties, additionalProperties, pattern, enum, minimum, maximum, minLength, oneOf)
and refuses any other keyword, so the schema cannot grow a rule this checker silently ignores.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from monitoring.evidently.prediction_log import (
    Window,
    _read_file_fast,
    _read_file_lines,
    iter_file_chunks,
    read_window,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "contracts" / "prediction-log.schema.json").read_text())
FIXTURE = ROOT / "tests" / "fixtures" / "prediction-log" / "predictions.jsonl"
# A forecast dataset's partition (dataset=<name>/…): valid lines the classification reader never reads.
FORECASTS = ROOT / "tests" / "fixtures" / "prediction-log" / "forecasts.jsonl"
KNOWN = {
    "$schema", "$id", "title", "description", "type", "properties", "required",
    "additionalProperties", "pattern", "enum", "minimum", "maximum", "minLength", "oneOf",
}  # fmt: skip
TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def problems(value: Any, schema: dict[str, Any], at: str = "") -> list[str]:
    unknown = set(schema) - KNOWN
    assert not unknown, f"schema keyword(s) {unknown} at {at or '/'} are not checked here"
    out: list[str] = []
    types = schema.get("type")
    if types is not None:
        allowed = types if isinstance(types, list) else [types]
        if not any(TYPES[t](value) for t in allowed):
            return [f"{at or '/'}: expected {allowed}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{at}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{at}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0):
            out.append(f"{at}: shorter than {schema['minLength']}")
    if TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{at}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{at}: {value} > {schema['maximum']}")
    if "oneOf" in schema:
        matching = sum(1 for branch in schema["oneOf"] if not problems(value, branch, at))
        if matching != 1:
            out.append(f"{at or '/'}: matches {matching} of the oneOf branches, not exactly one")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [f"{at}/{k}: required" for k in schema.get("required", []) if k not in value]
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                out += problems(v, props[k], f"{at}/{k}")
            elif extra is False:
                out.append(f"{at}/{k}: not allowed")
            elif isinstance(extra, dict):
                out += problems(v, extra, f"{at}/{k}")
    return out


def records(path: Path = FIXTURE) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_the_fixture_lines_conform_to_the_schema() -> None:
    recs = records()
    assert len(recs) >= 6
    for rec in recs:
        assert problems(rec, SCHEMA) == [], rec
    forecasts = records(FORECASTS)
    assert len(forecasts) >= 2
    for rec in forecasts:
        assert problems(rec, SCHEMA) == [], rec


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (lambda r: r.pop("ts"), "/ts: required"),
        (lambda r: r.update(probability=1.5), "/probability: 1.5 > 1"),
        (lambda r: r.update(features={"a": {"b": 1}}), "/features/a: expected"),
        (lambda r: r.update(customer_id="C000042"), "/customer_id: not allowed"),
        (lambda r: r.pop("probability"), "/: matches 0 of the oneOf branches"),
    ],
)
def test_the_checker_refuses_a_spoilt_line(spoil: Any, expected: str) -> None:
    rec = records()[0]
    spoil(rec)
    assert any(p.startswith(expected) for p in problems(rec, SCHEMA))


def test_every_field_the_reader_relies_on_is_required_by_the_schema() -> None:
    # prediction_log.py's docstring lists them; a schema that made one optional would break it.
    classification = next(b for b in SCHEMA["oneOf"] if "probability" in b["required"])
    relied = {"ts", "features", "probability", "model", "served", "customer_token"}
    assert relied <= set(SCHEMA["required"]) | set(classification["required"])
    assert {"name", "version"} <= set(SCHEMA["properties"]["model"]["required"])


WINDOW = Window(datetime(2026, 11, 20, 10, 0, tzinfo=UTC), datetime(2026, 11, 20, 11, 0, tzinfo=UTC))
FEATURES = ("tenure_days", "monthly_charges", "plan", "region")


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    part = tmp_path / "dt=2026-11-20" / "hr=10"
    part.mkdir(parents=True)
    shutil.copy(FIXTURE, part / "predictions.jsonl")
    return tmp_path


def test_the_reader_takes_every_conforming_line(log_dir: Path) -> None:
    recs = records()
    served = [r for r in recs if r["served"]]
    got = read_window(log_dir, WINDOW, FEATURES, "prediction")
    assert got.skipped_lines == 0
    assert len(got.frame) == len(served)
    assert got.frame["prediction"].tolist() == [r["probability"] for r in served]
    assert got.frame["customer_token"].tolist() == [r["customer_token"] for r in served]
    assert got.frame["tenure_days"].tolist()[:3] == [35, 400, 12]
    # A feature a line does not carry (another dataset's line, an absent field) is null, not an error.
    assert got.frame["monthly_charges"].isna().sum() == 3
    assert (got.model_name, got.model_version) == ("churn", "3")
    shadow = read_window(log_dir, WINDOW, FEATURES, "prediction", served_only=False)
    assert len(shadow.frame) == len(recs)


def test_both_reading_paths_agree_on_the_fixture(log_dir: Path) -> None:
    path = log_dir / "dt=2026-11-20" / "hr=10" / "predictions.jsonl"
    fast, fast_models, _ = _read_file_fast(path, WINDOW, FEATURES, "prediction", True)
    slow, slow_models, _ = _read_file_lines(path, WINDOW, FEATURES, "prediction", True)
    assert fast_models == slow_models
    assert fast["prediction"].tolist() == slow["prediction"].tolist()
    assert fast["customer_token"].tolist() == slow["customer_token"].tolist()
    assert fast["ts_ms"].tolist() == slow["ts_ms"].tolist()


def test_the_streaming_reader_takes_the_same_lines_without_falling_back(log_dir: Path) -> None:
    # The drift check streams the file in chunks with pinned types; on the API's own lines it must
    # not need the line-by-line fallback, and it must see what the whole-file reader sees.
    path = log_dir / "dt=2026-11-20" / "hr=10" / "predictions.jsonl"
    numerical = ("tenure_days", "monthly_charges")
    whole, models, _ = _read_file_fast(path, WINDOW, FEATURES, "prediction", True)
    chunks = list(iter_file_chunks(path, WINDOW, FEATURES, numerical, "prediction", True, chunk_rows=2))
    streamed = pd.concat([c[0] for c in chunks], ignore_index=True)
    assert sum((c[1] for c in chunks), Counter()) == models
    assert streamed["prediction"].tolist() == whole["prediction"].tolist()
    assert streamed["customer_token"].tolist() == whole["customer_token"].tolist()
    for c in FEATURES:
        assert streamed[c].astype(whole[c].dtype).equals(whole[c].reset_index(drop=True)), c
