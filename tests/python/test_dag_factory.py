"""The DAG factory: a dataset gets its DAGs from its contract alone.

A new flat ``builder: columns`` contract in a contracts folder of its own (``DRIFTWOOD_CONTRACTS_DIR``)
gets ``<name>_pipeline`` and ``<name>_retrain`` with the task kind's defaults, and one real
``airflow dags test`` of its pipeline (process runner, the built CLI, a real MLflow server) loads the
landed hourly files, snapshots, builds features, trains, scores and promotes a model registered under
the dataset's own name in the experiment ``driftwood-<name>``. A contract can switch a DAG off, and a
broken contract is an import error naming its file while the other datasets keep their DAGs."""

from __future__ import annotations

import json
import random
import re
import secrets
import shutil
import sqlite3
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag
from driftwood_steps import RUN_END
from orchestration_support import ROOT, airflow_home, mlflow_server, run_airflow

DAGS = ROOT / "dags"
CONTRACTS = ROOT / "contracts"
MLFLOW_PORT = 7460
HOURS = ("00", "01", "02")
ROWS_PER_HOUR = 500
PIPELINE_TASKS = ["ingest", "snapshot", "features", "train", "evaluate", "promote", "mlflow_evaluate"]


def parcels_contract(dataset: str, orchestration: str = "") -> str:
    """A dataset no code has heard of (the contract of tests/e2e/any-dataset.test.ts)."""
    return f"""
dataset: {dataset}
version: 1
description: Parcels shipped by a courier; the target is a late delivery.
task: binary_classification
builder: columns
alert_threshold: 0.5
{orchestration}
tables:
  - name: {dataset}_shipments
    files: [shipments.csv]
    key: parcel_ref
    columns:
      - {{ name: parcel_ref, type: string, role: id, nullable: false, on_anomaly: drop_row }}
      - {{ name: recipient_email, type: string, role: pii, store_as: recipient_token, nullable: true, on_anomaly: coerce }}
      - {{ name: shipped_at, type: timestamp, role: timestamp, nullable: false, on_anomaly: drop_row }}
      - {{ name: weight_kg, type: number, role: feature, nullable: true, range: {{ min: 0, max: 500 }}, on_anomaly: {{ default: null }} }}
      - {{ name: distance_km, type: number, role: feature, nullable: true, on_anomaly: coerce }}
      - {{ name: stops, type: integer, role: feature, nullable: true, on_anomaly: coerce }}
      - {{ name: carrier, type: string, role: feature, nullable: false, allowed: [swiftco, parcelpro, roadrunner], on_anomaly: drop_row }}
      - {{ name: service, type: string, role: feature, nullable: true, on_anomaly: coerce }}
      - {{ name: late, type: string, role: target, nullable: false, allowed: ['yes', 'no'], positive: 'yes', on_anomaly: drop_row }}
"""  # noqa: E501 - one column per line, as contracts are written


def shipments_csv(rng: random.Random, hour: str, offset: int) -> str:
    """Lateness grows with distance and stops and depends on the carrier; weight is noise. Blanks and
    stray text in numeric columns, as real exports have them."""
    import math

    carriers = ["swiftco", "parcelpro", "roadrunner"]
    effect = {"swiftco": -0.8, "parcelpro": 0.0, "roadrunner": 0.9}
    services = ["express", "standard", "economy", ""]
    lines = ["parcel_ref,recipient_email,shipped_at,weight_kg,distance_km,stops,carrier,service,late"]
    for i in range(ROWS_PER_HOUR):
        n = offset + i
        distance = 5 + rng.random() * 600
        stops = rng.randrange(0, 9)
        carrier = carriers[rng.randrange(0, 3)]
        z = -2.2 + 0.005 * distance + 0.3 * stops + effect[carrier] + rng.gauss(0, 0.4)
        late = "yes" if rng.random() < 1 / (1 + math.exp(-z)) else "no"
        weight = "n/a" if i % 37 == 0 else "" if i % 41 == 0 else f"{0.2 + rng.random() * 30:.2f}"
        stops_text = " " if i % 53 == 0 else str(stops)
        lines.append(
            ",".join(
                [
                    f"P{n:06d}",
                    f"person{n}@example.org",
                    f"2026-11-01T{hour}:{i % 60:02d}:00Z",
                    weight,
                    f"{distance:.1f}",
                    stops_text,
                    carrier,
                    services[rng.randrange(0, 4)],
                    late,
                ]
            )
        )
    return "\n".join(lines) + "\n"


def contracts_folder(path: Path, files: dict[str, str]) -> Path:
    """A contracts folder with the schema next to the contracts, as in the checkout."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONTRACTS / "contract.schema.json", path / "contract.schema.json")
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def dagbag_for(monkeypatch: pytest.MonkeyPatch, folder: Path) -> DagBag:
    monkeypatch.setenv("DRIFTWOOD_CONTRACTS_DIR", str(folder))
    return DagBag(dag_folder=str(DAGS))


def new_dataset() -> str:
    return f"parcels_{secrets.token_hex(3)}"


# --- DAGs from a contract, no Python edit ---------------------------------------------------------


def test_a_new_contract_gets_its_pipeline_and_retrain_dags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    name = new_dataset()
    bag = dagbag_for(monkeypatch, contracts_folder(tmp_path, {f"{name}.yaml": parcels_contract(name)}))
    assert bag.import_errors == {}
    assert set(bag.dags) == {f"{name}_pipeline", f"{name}_retrain", f"{name}_scoring", f"{name}_experiments"}

    pipeline = bag.dags[f"{name}_pipeline"]
    assert [t.task_id for t in pipeline.topological_sort()] == PIPELINE_TASKS
    assert set(pipeline.tags) == {"driftwood", name, "scheduled"}
    assert (pipeline.catchup, pipeline.max_active_runs) == (False, 1)
    assert "Parcels shipped by a courier" in pipeline.doc_md
    # Hourly, or when new raw data lands on the dataset's own asset.
    assert type(pipeline.timetable).__name__ == "AssetOrTimeSchedule"
    assert pipeline.timetable.timetable.expression == "0 * * * *"  # @hourly
    raw = pipeline.timetable.asset_condition.objects
    assert [(a.name, a.uri) for a in raw] == [(f"{name}_raw", f"driftwood://{name}/raw")]
    commands = {t.task_id: t.bash_command.split("cli.js ", 1)[-1] for t in pipeline.tasks}
    # The version train registered, by the model name the contract gives (the dataset's own here).
    assert commands.pop("mlflow_evaluate").endswith(
        f"/.venvs/mlflow/bin/python -m driftwood_mlflow.evaluate --model {name} --alias challenger"
    )
    assert pipeline.get_task("mlflow_evaluate").upstream_task_ids == {"train", "promote"}
    assert commands == {
        "ingest": f"ingest --dataset {name} --until '{RUN_END}'",
        "snapshot": f"snapshot --dataset {name} --as-of '{RUN_END}'",
        "features": f"features --dataset {name} --snapshot-as-of '{RUN_END}'",
        "train": f"train --dataset {name} --snapshot-as-of '{RUN_END}'",
        "evaluate": f"evaluate --dataset {name}",
        "promote": f"promote --dataset {name} --alias champion",
    }

    retrain = bag.dags[f"{name}_retrain"]
    assert [t.task_id for t in retrain.topological_sort()] == ["train", "promote", "mlflow_evaluate"]
    assert set(retrain.tags) == {"driftwood", name, "retrain"}
    # No time schedule: the drift monitor's asset event or a REST trigger.
    drift = retrain.timetable.asset_condition.objects
    assert [(a.name, a.uri) for a in drift] == [(f"{name}_drift", f"driftwood://{name}/drift")]
    assert retrain.get_task("train").bash_command.endswith(f"train --dataset {name} --snapshot-as-of latest")


def test_the_orchestration_section_overrides_the_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    name = new_dataset()
    section = """
orchestration:
  pipeline: { enabled: false }
  retrain: { dag_id: parcels_nightly, schedule: '15 2 * * *', steps: [snapshot, train, evaluate, promote] }
"""
    bag = dagbag_for(
        monkeypatch, contracts_folder(tmp_path, {f"{name}.yaml": parcels_contract(name, section)})
    )
    assert bag.import_errors == {}
    # `enabled: false`: no pipeline DAG at all (batch scoring and the experiments' looks stay).
    assert set(bag.dags) == {"parcels_nightly", f"{name}_scoring", f"{name}_experiments"}
    nightly = bag.dags["parcels_nightly"]
    assert [t.task_id for t in nightly.topological_sort()] == [
        "snapshot",
        "train",
        "evaluate",
        "promote",
        "mlflow_evaluate",
    ]
    # on_drift still defaults to true for a tabular retrain: the cron or the drift asset.
    assert type(nightly.timetable).__name__ == "AssetOrTimeSchedule"
    assert nightly.timetable.timetable.expression == "15 2 * * *"
    # With its own snapshot step, train names that snapshot rather than "latest".
    assert nightly.get_task("train").bash_command.endswith(f"--snapshot-as-of '{RUN_END}'")


BROKEN = {
    "unparsable.yaml": "dataset: [unclosed\n",
    "bad_cron.yaml": "dataset: bad_cron\nversion: 1\ntask: regression\nbuilder: columns\n"
    "orchestration: { retrain: { schedule: 'every hour' } }\n"
    "tables: [{ name: t, files: [t.csv], key: id, columns: [{ name: id, type: string, role: id }] }]\n",
    "unknown_step.yaml": "dataset: unknown_step\nversion: 1\ntask: regression\nbuilder: columns\n"
    "orchestration: { pipeline: { steps: [ingest, score] } }\n"
    "tables: [{ name: t, files: [t.csv], key: id, columns: [{ name: id, type: string, role: id }] }]\n",
}


def test_a_broken_contract_is_an_import_error_naming_it_and_the_others_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = contracts_folder(
        tmp_path,
        {
            "churn.yaml": (CONTRACTS / "churn.yaml").read_text(),
            "btc.yaml": (CONTRACTS / "btc.yaml").read_text(),
            **BROKEN,
        },
    )
    bag = dagbag_for(monkeypatch, folder)
    assert set(bag.dags) == {
        "churn_pipeline",
        "churn_retrain",
        "churn_scoring",
        "churn_experiments",
        "btc_forecast",
        "btc_retrain",
    }
    assert list(bag.import_errors) == [str(DAGS / "driftwood_contract_errors.py")]
    error = next(iter(bag.import_errors.values()))
    assert f"{folder / 'unparsable.yaml'}: cannot read the contract" in error
    assert f"{folder / 'bad_cron.yaml'}: /orchestration/retrain/schedule: expected a cron expression" in error
    assert re.search(
        rf"{re.escape(str(folder / 'unknown_step.yaml'))}: /orchestration/pipeline/steps/1: ", error
    )


def test_a_missing_contracts_folder_is_an_import_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bag = dagbag_for(monkeypatch, tmp_path / "nowhere")
    assert bag.dags == {}
    (error,) = bag.import_errors.values()
    hint = "set DRIFTWOOD_DAG_CONTRACTS_DIR or DRIFTWOOD_CONTRACTS_DIR"
    assert f"{tmp_path / 'nowhere'}: no contracts folder here ({hint})" in error


def test_two_contracts_cannot_make_the_same_dag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    name = new_dataset()
    twin = parcels_contract(f"{name}_b", f"orchestration: {{ retrain: {{ dag_id: {name}_retrain }} }}")
    folder = contracts_folder(tmp_path, {f"{name}.yaml": parcels_contract(name), f"{name}_b.yaml": twin})
    bag = dagbag_for(monkeypatch, folder)
    assert set(bag.dags) == {f"{name}_pipeline", f"{name}_retrain", f"{name}_scoring", f"{name}_experiments"}
    (error,) = bag.import_errors.values()
    assert f"{name}_b.yaml: DAG id {name}_retrain is already made from {name}.yaml" in error


def test_the_factory_and_the_steps_know_no_dataset_by_name() -> None:
    for module in (
        "driftwood_dags.py",
        "driftwood_contracts.py",
        "driftwood_steps.py",
        "driftwood_scoring.py",
        "driftwood_experiments.py",
    ):
        text = (DAGS / module).read_text().lower()
        assert "churn" not in text and "btc" not in text, module


# --- one real run of a generated pipeline -----------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    name = new_dataset()
    home = tmp_path_factory.mktemp("factory-home")
    folder = contracts_folder(home / "contracts", {f"{name}.yaml": parcels_contract(name)})
    rng = random.Random(2026)
    for k, hour in enumerate(HOURS):
        partition = home / "lake" / "raw" / name / "dt=2026-11-01" / f"hr={hour}"
        partition.mkdir(parents=True)
        (partition / "shipments.csv").write_text(shipments_csv(rng, hour, k * ROWS_PER_HOUR))
    with mlflow_server(MLFLOW_PORT) as mlflow_uri:
        env = airflow_home(
            "airflow-dag-factory",
            DAGS,
            {
                "DRIFTWOOD_RUNNER": "process",
                "DRIFTWOOD_HOME": str(home),
                "DRIFTWOOD_CONTRACTS_DIR": str(folder),
                "MLFLOW_TRACKING_URI": mlflow_uri,
                "DRIFTWOOD_PII_KEY": secrets.token_hex(16),
                "LOG_LEVEL": "info",
            },
        )
        # Nothing from the caller's shell may name the model or experiment: the contract does.
        for setting in ("DRIFTWOOD_MODEL_NAME", "DRIFTWOOD_EXPERIMENT", "DRIFTWOOD_LAKE_URI"):
            env.pop(setting, None)
        result = run_airflow(
            ["dags", "test", f"{name}_pipeline", "2026-11-01T03:00:00+00:00"], env, timeout=900
        )
        db = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
        try:
            states = dict(
                db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ?", (f"{name}_pipeline",))
            )
        finally:
            db.close()
        yield {
            "name": name,
            "home": home,
            "result": result,
            "states": states,
            "mlflow": mlflow_uri,
            "env": env,
        }


def _mlflow(base: str, path: str, **query: str) -> Any:
    url = f"{base}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as res:
        return json.loads(res.read())


def _mlflow_post(base: str, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        f"{base}/api/2.0/mlflow/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


def _result(run: dict[str, Any], command: str) -> dict[str, Any]:
    path = run["home"] / "results" / f"{command}.json"
    output = run["result"].stdout + run["result"].stderr
    assert path.exists(), f"no results/{command}.json; task states {run['states']}\n{output[-6000:]}"
    return json.loads(path.read_text())


def test_a_real_run_of_the_generated_pipeline_succeeds_task_by_task(pipeline_run: dict[str, Any]) -> None:
    output = pipeline_run["result"].stdout + pipeline_run["result"].stderr
    assert pipeline_run["states"] == dict.fromkeys(PIPELINE_TASKS, "success"), output[-6000:]
    assert pipeline_run["result"].returncode == 0, output[-6000:]


def test_the_run_loads_snapshots_and_builds_features_of_the_landed_hours(
    pipeline_run: dict[str, Any],
) -> None:
    name, rows = pipeline_run["name"], len(HOURS) * ROWS_PER_HOUR
    ingest = _result(pipeline_run, "ingest")
    assert (ingest["loaded"], ingest["rowsRead"], ingest["rowsLoaded"]) == (3, rows, rows)
    snapshot = _result(pipeline_run, "snapshot")
    assert snapshot["manifest"]["builder"] == "columns"
    assert snapshot["manifest"]["rows"] == rows
    # The snapshot as of the run's end (the dags test's logical date), named by content.
    features = _result(pipeline_run, "features")
    assert features["id"] == snapshot["id"] and features["rows"] == rows
    assert f"features/{name}/{snapshot['id']}/features.parquet" in features["files"]


def test_the_run_registers_and_promotes_a_model_named_after_the_dataset(pipeline_run: dict[str, Any]) -> None:
    name, mlflow = pipeline_run["name"], pipeline_run["mlflow"]
    trained = _result(pipeline_run, "train")
    assert trained["modelName"] == name
    evaluation = _result(pipeline_run, "evaluate")
    assert evaluation["candidate"]["segments"]
    promoted = _result(pipeline_run, "promote")
    assert promoted["promoted"] is True and str(promoted["version"]) == str(trained["modelVersion"])
    # In MLflow: the registered model is the dataset's, its run in the experiment driftwood-<name>,
    # and the champion alias points at the version the run trained.
    version = _mlflow(mlflow, "registered-models/alias", name=name, alias="champion")["model_version"]
    assert str(version["version"]) == str(trained["modelVersion"])
    run = _mlflow(mlflow, "runs/get", run_id=version["run_id"])["run"]
    experiment = _mlflow(mlflow, "experiments/get", experiment_id=run["info"]["experiment_id"])["experiment"]
    assert experiment["name"] == f"driftwood-{name}"


# --- mlflow.models.evaluate of the version the run registered, once ---------------------------------


def _evaluation_runs(pipeline_run: dict[str, Any], version: dict[str, Any]) -> list[dict[str, Any]]:
    """The version's evaluation runs, found by the tags driftwood_mlflow.evaluate gives them."""
    mlflow = pipeline_run["mlflow"]
    training = _mlflow(mlflow, "runs/get", run_id=version["run_id"])["run"]
    found = _mlflow_post(
        mlflow,
        "runs/search",
        {
            "experiment_ids": [training["info"]["experiment_id"]],
            "filter": f"tags.`driftwood.evaluates_run` = '{version['run_id']}' and "
            f"tags.`driftwood.model_version` = '{version['version']}' and "
            "tags.`driftwood.evaluator` = 'mlflow.models.evaluate'",
        },
    )
    return list(found.get("runs", []))


@pytest.fixture(scope="module")
def evaluate_rerun(pipeline_run: dict[str, Any]) -> dict[str, Any]:
    """The version's evaluation runs after the DAG run, then after the task's command ran again (as a
    retry or a cleared task runs it: the command the first test reads off the task, with the task's
    environment; not through `airflow tasks test`, whose start would double this fixture's time)."""
    name, mlflow = pipeline_run["name"], pipeline_run["mlflow"]
    version = _mlflow(mlflow, "registered-models/alias", name=name, alias="champion")["model_version"]
    first = _evaluation_runs(pipeline_run, version)
    points = _roc_auc_points(mlflow, first)
    again = subprocess.run(
        [str(MLFLOW_PYTHON), "-m", "driftwood_mlflow.evaluate", "--model", name, "--alias", "challenger"],
        env={**pipeline_run["env"], "PYTHONPATH": str(ROOT / "python")},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    after = _evaluation_runs(pipeline_run, version)
    return {
        "version": version,
        "first": first,
        "again": again,
        "after": after,
        "points": (points, _roc_auc_points(mlflow, after)),
    }


def _roc_auc_points(mlflow: str, runs: list[dict[str, Any]]) -> int:
    """The points in the history of the first run's roc_auc."""
    if not runs:
        return 0
    history = _mlflow(mlflow, "metrics/get-history", run_id=runs[0]["info"]["run_id"], metric_key="roc_auc")
    return len(history.get("metrics", []))


def test_the_run_evaluates_the_version_through_mlflow_in_a_child_run(
    pipeline_run: dict[str, Any], evaluate_rerun: dict[str, Any]
) -> None:
    version, runs = evaluate_rerun["version"], evaluate_rerun["first"]
    assert len(runs) == 1, runs
    (run,) = runs
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert run["info"]["status"] == "FINISHED"
    assert tags["mlflow.parentRunId"] == version["run_id"]
    assert tags["driftwood.model_name"] == pipeline_run["name"]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    training = _mlflow(pipeline_run["mlflow"], "runs/get", run_id=version["run_id"])["run"]
    ours = {m["key"]: m["value"] for m in training["data"]["metrics"]}
    # MLflow's evaluation of the holdout the training run kept finds the numbers training logged.
    assert abs(metrics["roc_auc"] - ours["holdout_roc_auc"]) <= 1e-9
    assert abs(metrics["f1_score"] - ours["holdout_f1"]) <= 1e-9
    assert metrics["example_count"] > 0


def test_a_second_run_of_the_task_adds_no_evaluation_run_and_no_metric_points(
    evaluate_rerun: dict[str, Any],
) -> None:
    again = evaluate_rerun["again"]
    assert again.returncode == 0, (again.stdout + again.stderr)[-6000:]
    assert '"reused": true' in again.stdout + again.stderr
    first, after = evaluate_rerun["first"], evaluate_rerun["after"]
    assert [r["info"]["run_id"] for r in after] == [r["info"]["run_id"] for r in first]
    # MLflow 3.17 logs each metric twice when the results are linked to the logged model (its
    # evaluator, then log_metrics with model_id): those points, and no more after the second run.
    before, later = evaluate_rerun["points"]
    assert before >= 1 and later == before


# --- batch scoring of the champion the run promoted, on both engines --------------------------------

SCORING_AS_OF = "2026-11-01T03:00:00+00:00"
SCORING_AS_OF_MS = 1_793_502_000_000
MLFLOW_PYTHON = ROOT / ".venvs" / "mlflow" / "bin" / "python"
READ_PARTITION = """
import json, sys
import pyarrow.parquet as pq
from pathlib import Path
files = sorted(p for p in Path(sys.argv[1]).glob("*.parquet"))
rows = [r for f in files for r in pq.read_table(f).to_pylist()]
print(json.dumps({"files": [f.name for f in files], "rows": rows}))
"""


def _warehouse_scores(home: Path, dataset: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(home / "warehouse.db")
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute(
            "SELECT entity_token, score, label, model_name, model_version, as_of FROM batch_scores"
            " WHERE dataset = ? ORDER BY as_of, entity_token",
            (dataset,),
        )
        return [dict(r) for r in rows]
    finally:
        db.close()


def _lake_partition(home: Path, dataset: str) -> dict[str, Any]:
    """The scores partition of the as-of hour, read by pyarrow (what a Spark or pandas reader sees)."""
    folder = home / "lake" / "scores" / dataset / "dt=2026-11-01" / "hr=03"
    done = subprocess.run(
        [str(MLFLOW_PYTHON), "-c", READ_PARTITION, str(folder)], capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    found["rows"].sort(key=lambda r: r["entity_token"])
    return found


@pytest.fixture(scope="module")
def scoring_runs(pipeline_run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Three real `airflow dags test` runs of `<name>_scoring` for the same logical date: Node, Node
    again, then Spark (local[2]); after each, the warehouse's and the lake's scores."""
    name, home = pipeline_run["name"], pipeline_run["home"]
    runs: dict[str, dict[str, Any]] = {}
    for label, engine in (("node", "node"), ("node again", "node"), ("spark", "spark")):
        env = {**pipeline_run["env"], "DRIFTWOOD_SCORING_ENGINE": engine, "SPARK_LOCAL_IP": "127.0.0.1"}
        result = run_airflow(["dags", "test", f"{name}_scoring", SCORING_AS_OF], env, timeout=900)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{label}: {output[-6000:]}"
        runs[label] = {
            "table": _warehouse_scores(home, name),
            "lake": _lake_partition(home, name),
            "score": _result(pipeline_run, "score"),
        }
    return runs


def test_the_node_engine_scores_every_row_with_the_champion(
    pipeline_run: dict[str, Any], scoring_runs: dict[str, dict[str, Any]]
) -> None:
    name, mlflow = pipeline_run["name"], pipeline_run["mlflow"]
    champion = _mlflow(mlflow, "registered-models/alias", name=name, alias="champion")["model_version"]
    threshold = float(next(t["value"] for t in champion["tags"] if t["key"] == "driftwood.threshold"))
    table = scoring_runs["node"]["table"]
    # Every row loaded before the as-of hour, once, tokenised (never the raw parcel ref).
    assert len(table) == len(HOURS) * ROWS_PER_HOUR
    assert len({r["entity_token"] for r in table}) == len(table)
    assert all(re.fullmatch(r"[0-9a-f]{32}", r["entity_token"]) for r in table)
    assert {(r["model_name"], r["model_version"], r["as_of"]) for r in table} == {
        (name, str(champion["version"]), SCORING_AS_OF_MS)
    }
    assert all(0 < r["score"] < 1 and r["label"] == int(r["score"] >= threshold) for r in table)
    assert 0 < sum(r["label"] for r in table) < len(table)
    # The lake partition holds the same rows, in one file.
    lake = scoring_runs["node"]["lake"]
    assert lake["files"] == ["part-00000-node.parquet"]
    assert lake["rows"] == table


def test_a_second_run_of_the_same_date_changes_nothing(scoring_runs: dict[str, dict[str, Any]]) -> None:
    first, again = scoring_runs["node"], scoring_runs["node again"]
    assert again["table"] == first["table"]
    assert again["lake"] == first["lake"]
    # It replaced the first run's rows rather than adding to them.
    assert again["score"]["table"]["deleted"] == len(first["table"])


def test_the_spark_engine_writes_the_same_scores(scoring_runs: dict[str, dict[str, Any]]) -> None:
    node, spark = scoring_runs["node again"], scoring_runs["spark"]
    assert spark["score"]["stage"] == "publish"
    assert len(spark["table"]) == len(node["table"])
    for a, b in zip(node["table"], spark["table"], strict=True):
        assert a["entity_token"] == b["entity_token"]
        assert abs(a["score"] - b["score"]) <= 1e-6, (a, b)
        assert (a["label"], a["model_version"], a["as_of"]) == (b["label"], b["model_version"], b["as_of"])
    # Spark's part files replaced the Node file: the partition holds one run's scores.
    assert spark["lake"]["files"] and all(f.startswith("part-") for f in spark["lake"]["files"])
    assert "part-00000-node.parquet" not in spark["lake"]["files"]
    assert spark["lake"]["rows"] == spark["table"]
