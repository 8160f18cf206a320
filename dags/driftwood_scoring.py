"""Batch scoring DAGs: ``<dataset>_scoring`` for every tabular contract.

Each run scores every entity the dataset's builder counts as active at the run's logical time with
the model version behind the registry alias ``champion``, into the warehouse table ``batch_scores``
and the lake partition ``scores/<dataset>/dt=YYYY-MM-DD/hr=HH/`` (entity id token, score, label at the
version's threshold, model name and version, as-of time). A rerun of the same logical date replaces
that as-of time's rows and files; it never adds to them.

One setting chooses the engine (``DRIFTWOOD_SCORING_ENGINE``, else the Airflow Variable
``driftwood_scoring_engine``, else ``node``):

* ``node``: one step, ``driftwood score``, run like every other step (process, Docker or Kubernetes
  runner): the champion is loaded as the API loads it and scores the rows in the step's process.
* ``spark``: ``driftwood score --stage inputs`` writes the rows and the pinned version to the lake,
  a plain ``spark-submit`` of ``python/driftwood_spark_scoring.py`` scores them with
  ``mlflow.pyfunc.spark_udf`` (master ``DRIFTWOOD_SPARK_MASTER``, default ``local[2]``; a cluster URL
  such as ``spark://host:7077`` in production), and ``driftwood score --stage publish`` checks Spark's
  output and loads it into the warehouse. ``spark-submit`` runs on the Airflow worker, from
  ``DRIFTWOOD_SPARK_SUBMIT`` (default: the project's mlflow venv, which has pyspark and mlflow; in the
  Airflow image, the one ``--build-arg SPARK=1`` installs). A worker without it or without Java fails
  the task at once, without retries, with one line saying what to install or set.

See docs/scoring.md.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal

from airflow.sdk import DAG
from driftwood_daily import daily_dag, tabular_datasets
from driftwood_notify import failure_notifier
from driftwood_steps import (
    DEFAULT_RETRIES,
    EXIT_GATE_NOT_PASSED,
    MAX_RETRY_DELAY,
    RETRY_DELAY,
    RUN_END,
    Step,
    project_root,
    step_env,
    step_task,
)

Engine = Literal["node", "spark"]
ENGINES: tuple[Engine, ...] = ("node", "spark")
ENGINE_VARIABLE = "driftwood_scoring_engine"
DEFAULT_SPARK_MASTER = "local[2]"
# How a worker gets Spark (docker/README.md, docs/scoring.md); DRIFTWOOD_SCORING_ENGINE=node needs none.
SPARK_IMAGE_FIX = (
    "build the Airflow image with --build-arg SPARK=1 (DRIFTWOOD_AIRFLOW_SPARK=1 docker/build-images.sh)"
)
# Daily, after the night's ingest: the retention team's list for the day.
SCHEDULE = "0 5 * * *"
# The run's as-of hour as the lake names partitions (tasks/src/time.ts partitionOf); Airflow's times are UTC.
# Double quotes only: the command is shell-quoted before Jinja renders it, and a ' would end up in the path.
PARTITION = '{{ (dag_run.data_interval_end or dag_run.run_after).strftime("dt=%Y-%m-%d/hr=%H") }}'


def configured_engine(engine: str | None = None) -> Engine:
    value = engine or os.environ.get("DRIFTWOOD_SCORING_ENGINE") or _engine_variable()
    if value not in ENGINES:
        raise ValueError(f"DRIFTWOOD_SCORING_ENGINE: expected one of {', '.join(ENGINES)}, got {value!r}")
    return value  # type: ignore[return-value]


def _engine_variable() -> str:
    from airflow.sdk import Variable

    return str(Variable.get(ENGINE_VARIABLE, default="node"))


def score_step(dataset: str, stage: str = "all") -> Step:
    args = ("--dataset", dataset, "--as-of", RUN_END, *(() if stage == "all" else ("--stage", stage)))
    return Step("score", args, timeout=timedelta(minutes=60), cpu=("1", "2"), memory=("1Gi", "4Gi"))


def spark_lake_root() -> str:
    """The lake as Spark names it: ``DRIFTWOOD_LAKE_URI`` (``s3://`` becomes Hadoop's ``s3a://``), else
    the folder the steps default to, ``<DRIFTWOOD_HOME>/lake``."""
    uri = os.environ.get("DRIFTWOOD_LAKE_URI", "").rstrip("/")
    if uri.startswith("s3://"):
        return "s3a://" + uri[len("s3://") :]
    if uri.startswith("file://"):
        return uri
    if uri:
        raise ValueError(f"DRIFTWOOD_LAKE_URI: expected file:// or s3://, got {uri!r}")
    home = Path(os.environ.get("DRIFTWOOD_HOME", ".driftwood"))
    return (project_root() / home / "lake").resolve().as_uri()


def spark_runtime_problem(submit: str, env: Mapping[str, str], cwd: Path) -> str | None:
    """What the worker lacks to run ``spark-submit``, as one line naming the fix, or None.

    ``spark-submit`` runs ``$JAVA_HOME/bin/java``, else the PATH's ``java``; the driver runs the job
    with ``PYSPARK_DRIVER_PYTHON``. Without them Spark fails only after its start-up, in words that
    do not name the setting, and each retry fails the same way."""
    path = env.get("PATH", os.defpath)

    def found(program: str) -> str | None:
        # A relative path with a folder is the task's (BashOperator's cwd), not this process's.
        if os.sep in program and not os.path.isabs(program):
            program = str(cwd / program)
        return shutil.which(program, path=path)

    if found(submit) is None:
        return (
            f"spark engine: no spark-submit at {submit!r} (DRIFTWOOD_SPARK_SUBMIT) on this worker: "
            f"{SPARK_IMAGE_FIX}, or set DRIFTWOOD_SPARK_SUBMIT to a pyspark 4.3 spark-submit"
        )
    java_home = env.get("JAVA_HOME")
    java = found(os.path.join(java_home, "bin", "java")) if java_home else found("java")
    if java is None:
        where = f"JAVA_HOME={java_home!r} has no bin/java" if java_home else "no java on PATH, no JAVA_HOME"
        return (
            f"spark engine: no Java runtime on this worker ({where}): "
            f"{SPARK_IMAGE_FIX}, or install openjdk-17-jre-headless, or set JAVA_HOME"
        )
    driver = env.get("PYSPARK_DRIVER_PYTHON", "")
    if driver and found(driver) is None:
        return (
            f"spark engine: no Python at {driver!r} (PYSPARK_DRIVER_PYTHON) on this worker: "
            f"{SPARK_IMAGE_FIX}, or set both PYSPARK_*PYTHON to one with mlflow and pyspark"
        )
    return None


def require_spark_runtime(submit: str, task_env: Mapping[str, str], cwd: Path, context: Any = None) -> None:
    """The spark task's pre-execute check: fail at once, no retries, when the worker cannot run Spark."""
    problem = spark_runtime_problem(submit, {**os.environ, **task_env}, cwd)
    if problem:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(problem)


def spark_task(dataset: str) -> Any:
    """``spark-submit`` of the scoring job on the worker, against the configured master."""
    from airflow.providers.standard.operators.bash import BashOperator

    root = project_root()
    python = root / ".venvs" / "mlflow" / "bin" / "python"
    # Empty counts as unset: the compose stack passes these through as ${VAR:-…}.
    submit = os.environ.get("DRIFTWOOD_SPARK_SUBMIT") or str(python.parent / "spark-submit")
    lake = spark_lake_root()
    env = {
        **step_env(),
        # The executors' Python: the one with mlflow and the version's pins, not the PATH's python3.
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON") or str(python),
        "PYSPARK_DRIVER_PYTHON": os.environ.get("PYSPARK_DRIVER_PYTHON") or str(python),
    }
    words = [
        submit,
        "--master",
        os.environ.get("DRIFTWOOD_SPARK_MASTER") or DEFAULT_SPARK_MASTER,
        # No web UI: one job a run, and several runs on one worker would fight over port 4040.
        "--conf",
        "spark.ui.enabled=false",
        str(root / "python" / "driftwood_spark_scoring.py"),
        "--input",
        f"{lake}/scoring/{dataset}/{PARTITION}/input",
        "--output",
        f"{lake}/scores/{dataset}/{PARTITION}",
    ]
    return BashOperator(
        task_id="spark_score",
        bash_command=" ".join(shlex.quote(w) for w in words),
        cwd=str(root),
        env=env,
        append_env=True,
        pre_execute=partial(require_spark_runtime, submit, env, root),
        retries=DEFAULT_RETRIES,
        retry_delay=RETRY_DELAY,
        retry_exponential_backoff=True,
        max_retry_delay=MAX_RETRY_DELAY,
        execution_timeout=timedelta(hours=2),
        # As for every step: 99 would be "nothing to act on" (the job itself never exits with it).
        skip_on_exit_code=EXIT_GATE_NOT_PASSED,
        on_failure_callback=[failure_notifier()],
    )


def doc_of(dataset: str, engine: Engine) -> str:
    steps = (
        "`score`"
        if engine == "node"
        else "`score_inputs` → `spark_score` (`spark-submit`, `mlflow.pyfunc.spark_udf`) → `score_publish`"
    )
    return "\n".join(
        [
            f"# {dataset}_scoring: the batch scoring of `{dataset}`: every active entity, by the champion",
            "",
            f"Engine `{engine}` (DRIFTWOOD_SCORING_ENGINE): {steps}. Writes the warehouse table "
            f"`batch_scores` and the lake partition `scores/{dataset}/dt=…/hr=…/` of the run's logical "
            "time; a rerun of the same date replaces them.",
            "",
            "Made by `dags/driftwood_scoring.py`; see docs/scoring.md.",
        ]
    )


def build_scoring_dag(dataset: str, engine: Engine) -> DAG:
    with daily_dag(dataset, "scoring", SCHEDULE, doc_of(dataset, engine)) as dag:
        if engine == "node":
            step_task(score_step(dataset), notify_success=True)
        else:
            inputs = step_task(score_step(dataset, "inputs"), task_id="score_inputs")
            publish = step_task(score_step(dataset, "publish"), task_id="score_publish", notify_success=True)
            inputs >> spark_task(dataset) >> publish
    return dag


def build_all() -> dict[str, DAG]:
    datasets = tabular_datasets()
    if not datasets:
        return {}
    engine = configured_engine()
    return {f"{d}_scoring": build_scoring_dag(d, engine) for d in datasets}


globals().update(build_all())
