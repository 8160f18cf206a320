"""The reference from the registry and quality from delayed labels, with real Evidently and a real
MLflow server: the champion's run names its training snapshot, the sidecar reads that snapshot from
the lake (once per snapshot id), and once the warehouse holds the labels of a window's customers
(joined on the API's customer token) the window gets a ClassificationPreset report and
``driftwood_model_quality_*`` gauges."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import CATEGORICAL, NUMERICAL, ROOT, feature_rows, write_predictions
from prometheus_client.parser import text_string_to_metric_families

from monitoring.evidently.config import LabelsConfig, parse_config
from monitoring.evidently.contract import label_source, load_contract
from monitoring.evidently.errors import MonitorError
from monitoring.evidently.metrics import MonitorMetrics
from monitoring.evidently.monitor import MonitorDeps, run_drift_check
from monitoring.evidently.quality import read_labels, tokenise

# The orchestration tests' helpers are plain standard-library code: one MLflow fixture for both venvs.
sys.path.insert(0, str(ROOT / "tests" / "python"))
from orchestration_support import mlflow_server

T0 = datetime(2026, 11, 20, 8, tzinfo=UTC)
MLFLOW_PORT = 7652
PII_KEY = "reference-quality-key-0123456789"
# Where churn's labels are, as its contract declares them.
CHURN_LABELS = dataclasses.asdict(label_source(load_contract("churn")))


@pytest.fixture(scope="module")
def mlflow() -> Iterator[str]:
    with mlflow_server(MLFLOW_PORT) as uri:
        yield uri


def rest(base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{base}/api/2.0/mlflow/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as res:
        return dict(json.loads(res.read()))


def register(base: str, name: str, tags: dict[str, str]) -> str:
    """A run with ``tags`` and a model version of ``name`` from it; returns the version."""
    exp = rest(base, "experiments/create", {"name": f"ref-{uuid.uuid4().hex[:10]}"})["experiment_id"]
    run = rest(
        base,
        "runs/create",
        {"experiment_id": exp, "tags": [{"key": k, "value": v} for k, v in tags.items()]},
    )["run"]["info"]
    try:
        rest(base, "registered-models/create", {"name": name})
    except urllib.error.HTTPError as err:
        assert err.code == 400  # RESOURCE_ALREADY_EXISTS
    mv = rest(
        base,
        "model-versions/create",
        {"name": name, "source": run["artifact_uri"] + "/model", "run_id": run["run_id"]},
    )
    return str(mv["model_version"]["version"])


def write_snapshot(lake: Path, frame: pd.DataFrame) -> str:
    """A snapshot as `driftwood snapshot` lays it out: data.parquet plus a manifest with its sha256."""
    data = frame.drop(columns=["probability"]).assign(
        customer_id=[f"C{i:06d}" for i in range(len(frame))], label=0
    )
    raw = data.to_parquet()
    sid = hashlib.sha256(raw).hexdigest()
    folder = lake / "snapshots" / "churn" / sid
    folder.mkdir(parents=True)
    (folder / "data.parquet").write_bytes(raw)
    (folder / "manifest.json").write_text(
        json.dumps({"id": sid, "dataSha256": hashlib.sha256(raw).hexdigest()})
    )
    return sid


def config_for(tmp: Path, extra: dict[str, Any]) -> Any:
    return parse_config(
        {
            "dataset": "churn",
            "predictions_dir": str(tmp / "predictions"),
            "lake_dir": str(tmp / "lake"),
            "columns": {"numerical": list(NUMERICAL), "categorical": list(CATEGORICAL)},
            "max_rows": 0,
            "report_mode": "drift_only",
            "decision": {"k": 2, "n": 3, "min_rows": 200, "cooldown_minutes": 360},
            **extra,
        },
        tmp,
    )


def gauges(metrics: MonitorMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    from prometheus_client import generate_latest

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_the_reference_is_the_training_snapshot_of_the_model_that_served(mlflow: str, tmp_path: Path) -> None:
    name = f"churn-ref-{uuid.uuid4().hex[:8]}"
    calm = write_snapshot(tmp_path / "lake", feature_rows(2000, seed=1))
    shifted = write_snapshot(tmp_path / "lake", feature_rows(2000, seed=2, shift=0.6))
    v_calm = register(mlflow, name, {"driftwood.snapshot_id": calm})
    v_shifted = register(mlflow, name, {"driftwood.snapshot_id": shifted})
    rest(mlflow, "registered-models/alias", {"name": name, "alias": "champion", "version": v_shifted})
    config = config_for(tmp_path, {"champion": {"tracking_uri": mlflow, "model_name": name}})
    deps = MonitorDeps(metrics=MonitorMetrics())

    # The window was served by the calm version: it is compared with that version's snapshot, not
    # the alias's, and drifts from it when the traffic moves.
    write_predictions(tmp_path / "predictions", feature_rows(600, seed=3), T0, 60, model=(name, v_calm))
    write_predictions(
        tmp_path / "predictions",
        feature_rows(600, seed=4, shift=0.6),
        T0 + timedelta(hours=1),
        60,
        (name, v_calm),
    )
    calm_run = run_drift_check(config, deps, T0 + timedelta(hours=1))
    assert calm_run["reference"]["snapshot_id"] == calm and calm_run["reference"]["model_version"] == v_calm
    assert calm_run["reference"]["hash"] == calm[:16] and calm_run["reference"]["rows"] == 2000
    assert calm_run["dataset_drift"] is False
    drifted = run_drift_check(config, deps, T0 + timedelta(hours=2))
    assert drifted["dataset_drift"] is True
    assert (deps.cache.misses, deps.cache.hits) == (1, 1)  # one snapshot read for both windows
    labels = {lbl["reference_hash"] for lbl, _ in gauges(deps.metrics)["driftwood_drift_share"]}
    assert labels == {calm[:16]}

    # A log that does not name a version of this model falls back to the alias.
    write_predictions(
        tmp_path / "predictions",
        feature_rows(600, seed=5, shift=0.6),
        T0 + timedelta(hours=2),
        60,
        ("other", "9"),
    )
    by_alias = run_drift_check(config, deps, T0 + timedelta(hours=3))
    assert by_alias["reference"]["snapshot_id"] == shifted and by_alias["dataset_drift"] is False

    # A version trained without a snapshot cannot be monitored against its data: the error says so.
    v_none = register(mlflow, name, {"driftwood.cutoff": "2026-11-01T00:00:00.000Z"})
    rest(mlflow, "registered-models/alias", {"name": name, "alias": "champion", "version": v_none})
    with pytest.raises(MonitorError, match=r"records no training snapshot .*--snapshot"):
        run_drift_check(config, deps, T0 + timedelta(hours=4))
    # A snapshot altered after the fact is refused.
    (tmp_path / "lake" / "snapshots" / "churn" / calm / "data.parquet").write_bytes(
        feature_rows(10, seed=9).to_parquet()
    )
    with pytest.raises(MonitorError, match="does not match its manifest"):
        run_drift_check(config, MonitorDeps(metrics=MonitorMetrics()), T0 + timedelta(hours=1))


def labelled_traffic(n: int, seed: int) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """Rows whose score carries real signal: churners get higher probabilities."""
    rng = np.random.default_rng(seed)
    frame = feature_rows(n, seed=seed)
    churned = rng.random(n) < 0.25
    frame["probability"] = np.clip(np.where(churned, rng.beta(5, 3, n), rng.beta(2, 5, n)), 0, 1)
    return frame, [f"C{seed:02d}{i:05d}" for i in range(n)], churned


def write_tokened(root: Path, frame: pd.DataFrame, ids: list[str], start: datetime) -> None:
    """The log as the API writes it with a PII key: ``customer_token`` = tokenise(customer_id)."""
    write_predictions(root, frame, start, 60, model=("churn", "4"))
    path = root / f"dt={start:%Y-%m-%d}" / f"hr={start:%H}" / "predictions.jsonl"
    lines = path.read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    for rec, cid in zip(recs[-len(ids) :], ids, strict=True):
        rec["customer_token"] = tokenise(cid, PII_KEY)
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")


def write_labels(db: Path, rows: list[tuple[str, datetime, datetime]]) -> None:
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE IF NOT EXISTS labels (customer_id varchar(32) primary key, churned_at bigint, "
        "reported_at bigint, source_key varchar(512))"
    )
    con.executemany(
        "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, 'raw/churn/labels.csv')",
        [(c, int(a.timestamp() * 1000), int(r.timestamp() * 1000)) for c, a, r in rows],
    )
    con.commit()
    con.close()


def test_the_sidecar_tokenises_like_the_platform() -> None:
    script = (
        "import('@driftwood/tasks').then(m => process.stdout.write(m.tokenise(' C000042 ', process.argv[1])))"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script, PII_KEY], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == tokenise("C000042", PII_KEY)


def test_quality_is_scored_once_the_labels_of_the_window_are_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pii-key").write_text(PII_KEY + "\n")
    feature_rows(2000, seed=1).to_parquet(tmp_path / "reference.parquet")
    db = tmp_path / "warehouse.db"
    config = config_for(
        tmp_path,
        {
            "reference": str(tmp_path / "reference.parquet"),
            "labels": {"warehouse_url": f"sqlite://{db}", "pii_key_file": "pii-key", "min_rows": 100},
        },
    )
    deps = MonitorDeps(metrics=MonitorMetrics())
    frame, ids, churned = labelled_traffic(600, seed=7)
    write_tokened(tmp_path / "predictions", frame, ids, T0)
    # One customer had already left before the window: that prediction does not count.
    churn_at = [T0 + timedelta(hours=20) if c else None for c in churned]
    churn_at[0] = T0 - timedelta(days=3)
    labels = [(cid, at, at + timedelta(hours=24)) for cid, at in zip(ids, churn_at, strict=True) if at]

    # Labels reported only up to shortly after the window: too early to judge it.
    write_labels(db, [r for r in labels if r[2] <= T0 + timedelta(hours=50)])
    early = run_drift_check(config, deps, T0 + timedelta(hours=1))
    assert early["quality"]["status"] == "skipped" and early["quality"]["window_end"] < T0.isoformat()
    assert "driftwood_model_quality_roc_auc" not in gauges(deps.metrics)

    # Every label is in (the feed has reported past the window's horizon plus the delay).
    write_labels(db, [*labels, ("C-later", T0 + timedelta(days=4), T0 + timedelta(days=5))])
    done = run_drift_check(config, deps, T0 + timedelta(hours=1))
    quality = done["quality"]
    assert quality["status"] == "scored", quality
    assert quality["window_end"] == (T0 + timedelta(hours=1)).isoformat()
    assert quality["rows"] == 599 and quality["positives"] == int(churned[1:].sum())
    want_auc = roc_auc(frame["probability"].to_numpy()[1:], churned[1:])
    assert quality["metrics"]["roc_auc"] == pytest.approx(want_auc, abs=1e-6)
    assert 0.7 < quality["metrics"]["roc_auc"] < 1
    assert (Path(quality["report_dir"]) / "quality.html").stat().st_size > 10_000
    got = gauges(deps.metrics)
    [(lbl, auc)] = got["driftwood_model_quality_roc_auc"]
    assert lbl == {"dataset": "churn", "model_name": "churn", "model_version": "4"} and auc == pytest.approx(
        want_auc
    )
    assert got["driftwood_model_quality_labelled_rows"][0][1] == 599
    for name in ("accuracy", "precision", "recall", "f1", "log_loss"):
        assert f"driftwood_model_quality_{name}" in got

    # Without the key the join is impossible: recorded, and the drift decision still stands.
    monkeypatch.delenv("DRIFTWOOD_PII_KEY", raising=False)
    monkeypatch.delenv("DRIFTWOOD_PII_KEY_FILE", raising=False)
    keyless = config_for(
        tmp_path,
        {
            "reference": str(tmp_path / "reference.parquet"),
            "labels": {"warehouse_url": f"sqlite://{db}"},
        },
    )
    record = run_drift_check(keyless, MonitorDeps(metrics=MonitorMetrics()), T0 + timedelta(hours=1))
    assert record["quality"]["status"] == "error" and "PII key" in record["quality"]["reason"]
    assert record["action"] == "no_drift"


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney: the share of (positive, negative) pairs the score orders right (ties half)."""
    pos, neg = scores[positive], scores[~positive]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


PG_URL = "postgres://postgres@127.0.0.1:5432/test"


def test_labels_read_alike_from_a_sqlite_and_a_postgresql_warehouse(tmp_path: Path) -> None:
    import psycopg

    key_file = tmp_path / "pii-key"
    key_file.write_text(PII_KEY + "\n")
    rows = [
        (f"C{i:06d}", T0 + timedelta(hours=i), T0 + timedelta(hours=i + 24, minutes=i)) for i in range(1, 40)
    ]
    db = tmp_path / "warehouse.db"
    write_labels(db, rows)
    schema = f"dwq_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as pg:
        pg.execute(f"CREATE SCHEMA {schema}")
        try:
            # The table as the platform's migration creates it on PostgreSQL.
            pg.execute(
                f"CREATE TABLE {schema}.labels (customer_id varchar(32) primary key, "
                "churned_at bigint not null, reported_at bigint not null, source_key varchar(512) not null)"
            )
            with pg.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {schema}.labels VALUES (%s, %s, %s, 'raw/churn/labels.csv')",
                    [(c, int(a.timestamp() * 1000), int(r.timestamp() * 1000)) for c, a, r in rows],
                )
            url = f"{PG_URL}?options=-c%20search_path%3D{schema}"
            from_pg = read_labels(LabelsConfig(**CHURN_LABELS, warehouse_url=url, pii_key_file=str(key_file)))
            from_sqlite = read_labels(
                LabelsConfig(**CHURN_LABELS, warehouse_url=f"sqlite://{db}", pii_key_file=str(key_file))
            )
            assert from_pg == from_sqlite
            assert from_pg.event_at[tokenise("C000007", PII_KEY)] == int(
                (T0 + timedelta(hours=7)).timestamp() * 1000
            )
            assert from_pg.watermark == T0 + timedelta(hours=39 + 24, minutes=39)

            # A schema without the table, or a server that does not answer: a clear error, no secret in it.
            empty = f"{PG_URL}?options=-c%20search_path%3Dpublic_{schema}"
            with pytest.raises(
                MonitorError, match=r"labels: cannot read table labels at 127\.0\.0\.1:5432/test"
            ):
                read_labels(LabelsConfig(**CHURN_LABELS, warehouse_url=empty, pii_key_file=str(key_file)))
            with pytest.raises(MonitorError, match="cannot read table labels") as refused:
                read_labels(
                    LabelsConfig(
                        **CHURN_LABELS,
                        warehouse_url="postgres://someone:s3cret-pw@127.0.0.1:1/test",
                        pii_key_file=str(key_file),
                    )
                )
            assert "s3cret-pw" not in str(refused.value)
            with pytest.raises(MonitorError, match="expected sqlite://<path> or postgres://"):
                read_labels(
                    LabelsConfig(
                        **CHURN_LABELS, warehouse_url="mysql://db/labels", pii_key_file=str(key_file)
                    )
                )
        finally:
            pg.execute(f"DROP SCHEMA {schema} CASCADE")


def test_the_warehouse_url_may_come_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "warehouse_url"
    config = config_for(
        tmp_path,
        {"reference": "ref.parquet", "labels": {"warehouse_url_file": str(secret)}},
    )
    assert config.labels is not None
    # Read when labels are read: a secret mounted after the start is found.
    with pytest.raises(MonitorError, match=r"labels\.warehouse_url_file: cannot read"):
        config.labels.resolved_url()
    secret.write_text("postgres://warehouse:s3cret@postgres:5432/driftwood\n")
    assert config.labels.resolved_url() == "postgres://warehouse:s3cret@postgres:5432/driftwood"
    with pytest.raises(
        MonitorError, match=r"labels\.warehouse_url \(or labels\.warehouse_url_file\): required"
    ):
        config_for(tmp_path, {"reference": "ref.parquet", "labels": {"min_rows": 5}})


def test_a_feature_no_caller_sent_is_left_out_and_named_not_fatal(tmp_path: Path) -> None:
    feature_rows(2000, seed=1).to_parquet(tmp_path / "reference.parquet")
    config = config_for(tmp_path, {"reference": str(tmp_path / "reference.parquet")})
    traffic = feature_rows(600, seed=2, shift=0.6)
    traffic["sessions_30d"] = np.nan  # an optional field that no request carried
    write_predictions(tmp_path / "predictions", traffic, T0, 60)
    record = run_drift_check(config, MonitorDeps(metrics=MonitorMetrics()), T0 + timedelta(hours=1))
    assert record["columns_without_values"] == ["sessions_30d"]
    assert "sessions_30d" not in {f["column"] for f in record["features"]}
    assert record["dataset_drift"] is True


def test_the_label_source_comes_from_the_contract_and_a_value_target_is_refused(tmp_path: Path) -> None:
    churn = load_contract("churn")
    assert dataclasses.asdict(label_source(churn)) == {
        "table": "labels",
        "id_column": "customer_id",
        "event_column": "churned_at",
        "reported_column": "reported_at",
        "horizon_hours": churn["training"]["horizon_hours"],
        "label_delay_hours": churn["training"]["label_delay_hours"],
    }
    # A renamed dataset with its own label table: the sidecar reads whatever the contract names.
    renamed = json.loads(json.dumps(churn))
    renamed["dataset"] = "subscriptions"
    renamed["training"]["horizon_hours"] = 72
    table = next(t for t in renamed["tables"] if t["name"] == "labels")
    table["name"] = "cancellations"
    for column in table["columns"]:
        column["name"] = {"churned_at": "cancelled_at", "customer_id": "account_id"}.get(
            column["name"], column["name"]
        )
    table["key"] = "account_id"
    source = label_source(renamed)
    assert (source.table, source.id_column, source.event_column, source.horizon_hours) == (
        "cancellations",
        "account_id",
        "cancelled_at",
        72,
    )
    # A target that is a value (a flat dataset's yes/no) has no event time to join on.
    flat = {
        "dataset": "parcels",
        "tables": [
            {
                "name": "shipments",
                "key": "ref",
                "columns": [
                    {"name": "ref", "type": "string", "role": "id"},
                    {"name": "late", "type": "string", "role": "target"},
                ],
            }
        ],
    }
    with pytest.raises(MonitorError, match="target 'late' is a value, not an event time"):
        label_source(flat)
