"""Builds an Airflow task that runs one Driftwood TypeScript step.

The DAG files only wire steps together; this module decides *how* a step runs:

* ``process`` (the embedded default): ``node tasks/dist/cli.js <step> ...`` on the worker;
* ``docker``: a ``DockerOperator`` running the tasks image;
* ``kubernetes``: a ``KubernetesPodOperator`` running the tasks image in a namespace.

The runner comes from the ``DRIFTWOOD_RUNNER`` environment variable unless a caller passes one.
Exit code 99 means "quality gate not passed" and marks the task *skipped*, not failed.
Nothing here does I/O at import time: DAG parsing stays fast and side-effect free.
"""

from __future__ import annotations

import os
import shlex
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

Runner = Literal["process", "docker", "kubernetes"]
RUNNERS: tuple[Runner, ...] = ("process", "docker", "kubernetes")

# The contract with the TypeScript CLI (tasks/src/errors.ts).
EXIT_GATE_NOT_PASSED = 99

DEFAULT_RETRIES = 2
DEFAULT_IMAGE = "ghcr.io/driftwood-mlops/driftwood-tasks:latest"

# Settings passed through to the step; secrets are never put on the command line.
PASSTHROUGH_ENV = (
    "DRIFTWOOD_HOME",
    "DRIFTWOOD_LAKE_URI",
    "DRIFTWOOD_WAREHOUSE_URL",
    "DRIFTWOOD_EXPERIMENT",
    "DRIFTWOOD_MODEL_NAME",
    "DRIFTWOOD_PII_KEY_FILE",
    "DRIFTWOOD_TF_BACKEND",
    "MLFLOW_TRACKING_URI",
    "LOG_LEVEL",
)


def project_root() -> Path:
    """Where the checkout lives (the process runner runs the CLI from there)."""
    return Path(os.environ.get("DRIFTWOOD_ROOT", Path(__file__).resolve().parents[1]))


def configured_runner(runner: str | None = None) -> Runner:
    value = runner or os.environ.get("DRIFTWOOD_RUNNER", "process")
    if value not in RUNNERS:
        raise ValueError(f"DRIFTWOOD_RUNNER: expected one of {', '.join(RUNNERS)}, got {value!r}")
    return value  # type: ignore[return-value]


def step_env() -> dict[str, str]:
    return {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}


def step_task(
    step: str,
    args: list[str] | None = None,
    *,
    task_id: str | None = None,
    runner: str | None = None,
    retries: int = DEFAULT_RETRIES,
    execution_timeout: timedelta = timedelta(minutes=30),
    **operator_kwargs: Any,
) -> Any:
    """Returns an operator that runs ``driftwood <step> <args>`` with the configured runner."""
    args = args or []
    chosen = configured_runner(runner)
    common: dict[str, Any] = {
        "task_id": task_id or step,
        "retries": retries,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "execution_timeout": execution_timeout,
        **operator_kwargs,
    }
    if chosen == "process":
        from airflow.providers.standard.operators.bash import BashOperator

        root = project_root()
        command = " ".join(["node", shlex.quote(str(root / "tasks" / "dist" / "cli.js")), step, *args])
        return BashOperator(
            bash_command=command,
            cwd=str(root),
            env=step_env(),
            append_env=True,
            skip_on_exit_code=EXIT_GATE_NOT_PASSED,
            **common,
        )
    image = os.environ.get("DRIFTWOOD_TASKS_IMAGE", DEFAULT_IMAGE)
    if chosen == "docker":
        from airflow.providers.docker.operators.docker import DockerOperator

        return DockerOperator(
            image=image,
            command=[step, *args],
            environment=step_env(),
            auto_remove="success",
            skip_on_exit_code=EXIT_GATE_NOT_PASSED,
            **common,
        )
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    return KubernetesPodOperator(
        image=image,
        cmds=["node", "/app/tasks/dist/cli.js"],
        arguments=[step, *args],
        namespace=os.environ.get("DRIFTWOOD_K8S_NAMESPACE", "driftwood"),
        env_vars=step_env(),
        name=f"driftwood-{step}",
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        skip_on_exit_code=EXIT_GATE_NOT_PASSED,
        **common,
    )
