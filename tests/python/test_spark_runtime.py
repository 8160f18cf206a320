"""The scoring DAG's Spark task on a worker that cannot run Spark (the Airflow image built without
``--build-arg SPARK=1``): its pre-execute check fails the task at once, with Airflow's no-retry
failure and one line naming what is missing and how to get it, before ``spark-submit`` starts.
The real task of the real DAG, against this machine's real ``spark-submit`` and Java."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.serialization.serialized_objects import DagSerialization

ROOT = Path(__file__).resolve().parents[2]
SUBMIT = ROOT / ".venvs" / "mlflow" / "bin" / "spark-submit"


@pytest.fixture
def scoring(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # The module builds its DAGs at import; the engine set here keeps that from asking for a Variable.
    monkeypatch.setenv("DRIFTWOOD_SCORING_ENGINE", "node")
    for name in ("JAVA_HOME", "DRIFTWOOD_SPARK_SUBMIT", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"):
        monkeypatch.delenv(name, raising=False)
    return importlib.import_module("driftwood_scoring")


def spark_task(scoring: ModuleType) -> Any:
    dag = scoring.build_scoring_dag("churn", "spark")
    # The check travels with the DAG: it serialises as the scheduler and the API server store it.
    assert DagSerialization.from_dict(DagSerialization.to_dict(dag)).task_dict.keys() == dag.task_dict.keys()
    return dag.get_task("spark_score")


def failure(task: Any) -> str:
    with pytest.raises(AirflowFailException) as caught:
        task._pre_execute_hook({})
    line = str(caught.value)
    assert "\n" not in line
    return line


def test_the_spark_task_runs_where_spark_submit_and_java_are(scoring: ModuleType) -> None:
    # This machine has both (scripts/system-deps.sh, make install): the check lets the task run.
    assert SUBMIT.exists(), "the mlflow venv's spark-submit is missing: run `make install`"
    assert shutil.which("java"), "java is missing: run `make system-deps`"
    assert spark_task(scoring)._pre_execute_hook({}) is None


def test_a_worker_without_java_fails_at_once_naming_the_build_arg(
    scoring: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A PATH with pyspark's venv and an empty folder, no Java: the Airflow image without the build arg.
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{SUBMIT.parent}")
    line = failure(spark_task(scoring))
    assert line.startswith("spark engine: no Java runtime on this worker (no java on PATH, no JAVA_HOME)")
    assert "--build-arg SPARK=1" in line and "JAVA_HOME" in line

    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert f"JAVA_HOME={str(tmp_path)!r} has no bin/java" in failure(spark_task(scoring))


def test_a_missing_spark_submit_fails_at_once_naming_the_setting(
    scoring: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The image's default: <root>/.venvs/mlflow/bin/spark-submit, absent without the build arg.
    monkeypatch.setenv("DRIFTWOOD_ROOT", str(tmp_path))
    line = failure(spark_task(scoring))
    missing = tmp_path / ".venvs" / "mlflow" / "bin" / "spark-submit"
    assert line.startswith(f"spark engine: no spark-submit at {str(missing)!r} (DRIFTWOOD_SPARK_SUBMIT)")
    assert "--build-arg SPARK=1" in line

    # An empty setting (the compose stack's ${DRIFTWOOD_SPARK_SUBMIT:-…} when blanked) is the default.
    monkeypatch.setenv("DRIFTWOOD_SPARK_SUBMIT", "")
    assert str(missing) in failure(spark_task(scoring))
    monkeypatch.setenv("DRIFTWOOD_SPARK_SUBMIT", "spark-submit-nowhere")
    assert "'spark-submit-nowhere'" in failure(spark_task(scoring))


# ---- the Airflow image's opt-in Spark (docker/airflow.Dockerfile, docker/build-images.sh) ----------


def test_the_airflow_image_gets_spark_only_when_asked_and_where_the_dag_looks() -> None:
    dockerfile = (ROOT / "docker" / "airflow.Dockerfile").read_text()
    stages = dockerfile.split("\nFROM ")[1:]
    using = [stage for stage in stages if "$SPARK" in stage]
    assert len(using) == 2, "expected the venv (build stage) and Java (runtime stage) behind SPARK"
    for stage in using:
        # Off unless asked: each stage that reads SPARK declares it with the default 0.
        assert "\nARG SPARK=0\n" in stage.split("$SPARK")[0]
    # The DAG's default spark-submit, with the image's root (dags/ is copied to /opt/airflow/dags).
    assert "COPY --chown=airflow:0 dags/ /opt/airflow/dags/" in dockerfile
    assert "python -m venv /opt/airflow/.venvs/mlflow" in dockerfile
    assert "COPY python/driftwood_spark_scoring.py /opt/airflow/python/" in dockerfile
    assert "pip install --no-cache-dir -r /tmp/mlflow.lock" in dockerfile
    assert re.search(r"^pyspark==4\.3\.\d+$", (ROOT / "requirements" / "mlflow.lock").read_text(), re.M)

    script = ROOT / "docker" / "build-images.sh"
    assert '[ "$c" != airflow ] || extra=(--build-arg "SPARK=$spark")' in script.read_text()
    # A wrong value stops the script before any build.
    r = subprocess.run(
        ["bash", str(script), "airflow"],
        env={**os.environ, "DRIFTWOOD_AIRFLOW_SPARK": "yes", "DRIFTWOOD_HOME": str(ROOT / ".driftwood")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "DRIFTWOOD_AIRFLOW_SPARK: expected 0 or 1, got 'yes'" in r.stderr
