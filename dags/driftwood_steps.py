"""Builds the Airflow task that runs one Driftwood TypeScript step.

The DAG factory (``driftwood_dags.py``) only wires steps together; this module says what each step
kind runs for a dataset (``dataset_steps``) and decides *how* a step runs:

* ``process`` (the embedded default): ``node tasks/dist/cli.js <step> ...`` on the worker;
* ``docker``: a ``DockerOperator`` running the tasks image;
* ``kubernetes``: a ``KubernetesPodOperator`` running the tasks image in a namespace, with requests and
  limits, a service account and the secrets mounted as environment from a Kubernetes secret; its
  pods meet Pod Security Admission ``restricted`` and run in ``DRIFTWOOD_K8S_NAMESPACE``, else in
  Terraform's ``driftwood-<DRIFTWOOD_ENV>`` (``driftwood-production`` when DRIFTWOOD_ENV is unset).

A step of MLflow's Python tools (``Step.module``, such as ``mlflow_evaluate``: ``python -m
driftwood_mlflow.evaluate``) runs the same three ways with the mlflow environment instead of Node:
the checkout's ``.venvs/mlflow`` with ``PYTHONPATH=python`` (process), or the MLflow image
(``DRIFTWOOD_MLFLOW_IMAGE``, ``docker/mlflow.Dockerfile``, which holds ``driftwood_mlflow``); it gets
the MLflow settings and ``MLFLOW_TRACKING_TOKEN`` alone of the secrets.

The runner comes from, in order: the ``runner`` argument, the ``DRIFTWOOD_RUNNER`` environment
variable, the Airflow Variable ``driftwood_runner`` (which Airflow also reads from
``AIRFLOW_VAR_DRIFTWOOD_RUNNER`` without a database round trip), and finally ``process``.
Exit code 99 means "nothing to act on" (a quality gate not passed, an empty lake) and marks the task
*skipped*, not failed; exit code 2 (usage, configuration, data missing, not found) fails the task
without retrying it; any other code fails it for a retry (every runner: ``step_outcome``). The
failure carries the step's own ``<CODE>: <message>``, and the step's output reads in the task log as
plain lines at their own level (``driftwood_step_logs``), with a link to the MLflow run it names.
Secrets never travel as command-line arguments or in the operator's rendered ``env``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote_plus

from driftwood_notify import failure_notifier, skipped_notifier, success_notifier
from driftwood_step_logs import LineRouter, StepLog, mlflow_ui_url

Runner = Literal["process", "docker", "kubernetes"]
RUNNERS: tuple[Runner, ...] = ("process", "docker", "kubernetes")
RUNNER_VARIABLE = "driftwood_runner"

# The contract with the TypeScript CLI (tasks/src/errors.ts): 99 a quality gate not passed (the task
# is skipped); 2 a usage, configuration, missing-data or not-found error, which a retry cannot fix
# (the task fails at once instead of retrying); 1 a fault worth retrying.
EXIT_GATE_NOT_PASSED = 99
EXIT_NOT_RETRYABLE = 2

DEFAULT_RETRIES = 2
# 30 s, 60 s, 120 s, … capped: a flapping MLflow or warehouse gets time to come back.
RETRY_DELAY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(minutes=10)
DEFAULT_IMAGE = "ghcr.io/driftwood-mlops/driftwood-tasks:latest"
IMAGE_CLI = "/app/tasks/dist/cli.js"
# The image of the steps that run on MLflow's Python tools (Step.module).
DEFAULT_MLFLOW_IMAGE = "ghcr.io/driftwood-mlops/driftwood-mlflow:latest"
# The MLflow image's user (docker/mlflow.Dockerfile: USER 10001:10001).
MLFLOW_POD_UID = 10001

# Plain settings passed through to the step.
PASSTHROUGH_ENV = (
    "DRIFTWOOD_HOME",
    "DRIFTWOOD_LAKE_URI",
    "DRIFTWOOD_EXPERIMENT",
    "DRIFTWOOD_MODEL_NAME",
    "DRIFTWOOD_PII_KEY_FILE",
    "DRIFTWOOD_TF_BACKEND",
    "MLFLOW_TRACKING_URI",
    "LOG_LEVEL",
    "DRIFTWOOD_S3_ENDPOINT",
    "DRIFTWOOD_S3_REGION",
    "DRIFTWOOD_S3_PATH_STYLE",
    "DRIFTWOOD_CONTRACTS_DIR",
    # Which dataset DRIFTWOOD_MODEL_NAME / DRIFTWOOD_EXPERIMENT rename (all of them when unset).
    "DRIFTWOOD_DATASET",
    "DRIFTWOOD_FEATURE_ENGINE",
    # The MLflow and Airflow clients' timeout and retries (docs/orchestration.md).
    "DRIFTWOOD_HTTP_TIMEOUT_MS",
    "DRIFTWOOD_HTTP_RETRIES",
    "DRIFTWOOD_HTTP_BACKOFF_MS",
    # Log lines to Loki as well (docs/monitoring.md, "Searching logs").
    "DRIFTWOOD_LOKI_URL",
    "DRIFTWOOD_LOKI_BATCH_SECONDS",
    "DRIFTWOOD_LOKI_TIMEOUT_MS",
)
# Secrets: environment variable → key in the Kubernetes secret (DRIFTWOOD_K8S_SECRET). The process
# runner inherits them from the worker; Docker gets them as private (never rendered) environment.
SECRET_ENV = {
    "DRIFTWOOD_PII_KEY": "pii-key",
    "DRIFTWOOD_WAREHOUSE_URL": "warehouse-url",
    "MLFLOW_TRACKING_TOKEN": "mlflow-tracking-token",
    # A Slack incoming-webhook URL is a credential: whoever has it can post to the channel.
    "DRIFTWOOD_INGEST_ALERT_WEBHOOK": "ingest-alert-webhook",
}


@dataclass(frozen=True)
class Step:
    """One CLI command as a task: its arguments (Jinja-templated) and its limits."""

    name: str
    args: tuple[str, ...] = ()
    timeout: timedelta = timedelta(minutes=30)
    # Kubernetes requests/limits; training is the one step that needs real CPU and memory.
    cpu: tuple[str, str] = ("250m", "1")
    memory: tuple[str, str] = ("512Mi", "1Gi")
    # `python -m <module>` in the mlflow environment instead of the Node CLI (python/driftwood_mlflow).
    module: str | None = None


# The step kinds a contract's DAG may chain, in pipeline order (contracts/contract.schema.json).
STEP_KINDS = ("extract", "ingest", "snapshot", "features", "train", "evaluate", "promote")

# What a tabular dataset's steps load and snapshot up to: the end of the data interval; for a run
# landed files started (no interval) the newest landed partition's end (``landed_as_of``: what the
# lake's lander posts as `driftwood_as_of`, or the object keys of the lake bucket's notifications an
# asset watcher turned into the event) — the latest of them when several landings are consumed at
# once; otherwise (a manual run) the time it was triggered. Only a time ever reaches the step's
# command line. (No quotes inside: the process runner single-quotes each word before Jinja renders it.)
# A DAG built without STEP_MACROS (its runs consume no landings) takes the trigger time.
RUN_END = (
    "{{ (dag_run.data_interval_end or (driftwood_landed_as_of(dag_run.consumed_asset_events | default([]))"
    " if driftwood_landed_as_of is defined else none) or dag_run.run_after).isoformat() }}"
)
# The end of the run's data interval: a forecast dataset's DAGs always have one (a cron interval).
INTERVAL_END = "{{ data_interval_end }}"


# An hour partition in a lake key: `dt=YYYY-MM-DD/hr=HH` (tasks/src/time.ts `hourOfKey`).
_PARTITION = re.compile(r"(?:^|/)dt=(\d{4}-\d{2}-\d{2})/hr=(\d{2})/")


def landed_as_of(events: Iterable[Any]) -> datetime | None:
    """The newest landed partition's end among a run's consumed asset events, or None when none names
    one (a drift event, a manual run). An event names it as ``driftwood_as_of`` in its extra (the lake's
    lander, tasks/src/lake/landing.ts) or through the S3 notifications a lake queue's watcher received
    (``driftwood_lake_queue.py``: extra ``{"from_trigger": true, "payload": {"message_batch": […]}}``,
    each message's body S3's JSON with URL-encoded object keys). An as-of that is not a time raises
    ValueError rather than reaching a command line."""
    ends: list[datetime] = []
    for event in events:
        extra = getattr(event, "extra", None) or {}
        if "driftwood_as_of" in extra:
            ends.append(datetime.fromisoformat(str(extra["driftwood_as_of"])))
        payload = extra.get("payload") if extra.get("from_trigger") else None
        for message in (payload or {}).get("message_batch") or []:
            ends.extend(_notified_partition_ends(message))
    return max(ends) if ends else None


def _notified_partition_ends(message: Mapping[str, Any]) -> list[datetime]:
    try:
        records = json.loads(message.get("Body") or "{}").get("Records") or []
    except (TypeError, ValueError, AttributeError):
        return []
    ends = []
    for record in records:
        key = unquote_plus(str(((record.get("s3") or {}).get("object") or {}).get("key") or ""))
        found = _PARTITION.search(key)
        if found:
            day = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC)
            ends.append(day + timedelta(hours=int(found.group(2)) + 1))
    return ends


# What RUN_END calls: every DAG whose steps take it passes these as its user_defined_macros.
STEP_MACROS = {"driftwood_landed_as_of": landed_as_of}


def source_variable(dataset: str) -> str:
    """The Airflow Variable holding a forecast dataset's source: an http(s) URL of the candle endpoint
    (``{start}``/``{end}`` or ``{start_ms}``/``{end_ms}`` are filled with the data interval) or the lake
    key of a dropped file. Read at run time (a template), never at parse time; Airflow also reads it
    from ``AIRFLOW_VAR_DRIFTWOOD_<DATASET>_SOURCE``."""
    return f"driftwood_{dataset}_source"


def dataset_steps(dataset: str, as_of: str = RUN_END, train_as_of: str | None = None) -> dict[str, Step]:
    """Every step kind for one dataset: its CLI arguments (the dataset substituted), timeout and
    Kubernetes resources. ``as_of`` is the time ingest loads up to and snapshot, features and train
    name (``--snapshot-as-of`` resolves to the very snapshot the snapshot step took: "the newest
    snapshot" could be a later one somebody else took); ``train_as_of`` overrides it for train
    (``latest`` in a retrain with no snapshot step: the newest cutoff whose labels are all in)."""
    d = ("--dataset", dataset)
    train_rows = ("--snapshot-as-of", train_as_of or as_of)
    return {
        # The run's data interval from the source (a dropped file or an exchange URL) to the lake.
        "extract": Step(
            "extract",
            (
                *d,
                "--source",
                '{{ var.value.get("' + source_variable(dataset) + '", "") }}',
                "--interval",
                "{{ data_interval_start }}/{{ data_interval_end }}",
            ),
            timeout=timedelta(minutes=10),
        ),
        # Everything before `as_of` that is not loaded yet: missed hours load too, once.
        "ingest": Step("ingest", (*d, "--until", as_of), timeout=timedelta(minutes=20)),
        # The training table as of `as_of`, immutable and content addressed.
        "snapshot": Step("snapshot", (*d, "--as-of", as_of), timeout=timedelta(minutes=20)),
        "features": Step(
            "features",
            (*d, "--snapshot-as-of", as_of),
            timeout=timedelta(minutes=30),
            memory=("1Gi", "2Gi"),
        ),
        "train": Step(
            "train",
            (*d, *train_rows),
            timeout=timedelta(minutes=60),
            cpu=("1", "2"),
            memory=("2Gi", "4Gi"),
        ),
        # Scores challenger and champion on the same holdout.
        "evaluate": Step("evaluate", d, timeout=timedelta(minutes=20)),
        # Moves the alias when the challenger passes the gate; exit 99 (skipped) when it does not.
        "promote": Step("promote", (*d, "--alias", "champion"), timeout=timedelta(minutes=10)),
    }


MLFLOW_EVALUATE = "mlflow_evaluate"


def mlflow_evaluate_step(model_name: str) -> Step:
    """``mlflow.models.evaluate`` of the version train registered (the ``challenger`` alias, which
    promote leaves in place) on its training run's holdout, into a child run of that run
    (python/driftwood_mlflow/evaluate.py). A version evaluated once is not evaluated again, so a
    re-run of the task adds no run and no metric points."""
    return Step(
        MLFLOW_EVALUATE,
        ("--model", model_name, "--alias", "challenger"),
        timeout=timedelta(minutes=20),
        cpu=("500m", "1"),
        memory=("1Gi", "2Gi"),
        module="driftwood_mlflow.evaluate",
    )


def project_root() -> Path:
    """Where the checkout lives (the process runner runs the CLI from there)."""
    return Path(os.environ.get("DRIFTWOOD_ROOT", Path(__file__).resolve().parents[1]))


def configured_runner(runner: str | None = None) -> Runner:
    value = runner or os.environ.get("DRIFTWOOD_RUNNER") or _runner_variable()
    if value not in RUNNERS:
        raise ValueError(f"DRIFTWOOD_RUNNER: expected one of {', '.join(RUNNERS)}, got {value!r}")
    return value  # type: ignore[return-value]


def _runner_variable() -> str:
    from airflow.sdk import Variable

    return str(Variable.get(RUNNER_VARIABLE, default="process"))


def step_env() -> dict[str, str]:
    return {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}


def container_env(*drop: str) -> dict[str, str]:
    """The plain settings for a step in its own container: never the worker's paths to secret files
    (the container gets the values, or a *_FILE setting would take precedence over them)."""
    worker_only = {*(f"{name}_FILE" for name in SECRET_ENV), *drop}
    env = {k: v for k, v in step_env().items() if k not in worker_only}
    # What BashOperator gives the process runner's step by itself: the DAG run each log line names.
    env["AIRFLOW_CTX_DAG_RUN_ID"] = "{{ run_id }}"
    return env


# The one secret a step of MLflow's Python tools needs.
MLFLOW_SECRETS = ("MLFLOW_TRACKING_TOKEN",)


def step_secrets(spec: Step) -> tuple[str, ...]:
    """The secrets a step gets: every one for the CLI, the MLflow token alone for an MLflow step."""
    return MLFLOW_SECRETS if spec.module else tuple(SECRET_ENV)


def secret_env(names: Iterable[str] = tuple(SECRET_ENV)) -> dict[str, str]:
    """The secrets the worker holds, each from its variable or from the file its ``*_FILE`` names
    (a container secret); a file that cannot be read is left out, and the step then says which
    setting it misses."""
    out: dict[str, str] = {}
    for name in names:
        if os.environ.get(name):
            out[name] = os.environ[name]
        elif path := os.environ.get(f"{name}_FILE"):
            try:
                out[name] = Path(path).read_text().strip()
            except OSError:
                continue
    return out


def docker_mounts() -> list[Any]:
    """``DRIFTWOOD_DOCKER_VOLUMES``: ``volume:/path[,volume:/path…]``, named volumes every step
    container mounts (the compose stack's shared ``driftwood-data``)."""
    from docker.types import Mount

    spec = os.environ.get("DRIFTWOOD_DOCKER_VOLUMES", "").strip()
    mounts = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        source, sep, target = item.partition(":")
        if not sep or not source or not target.startswith("/"):
            raise ValueError(f"DRIFTWOOD_DOCKER_VOLUMES: expected volume:/path, got {item!r}")
        mounts.append(Mount(target=target, source=source, type="volume"))
    return mounts


def step_task(
    step: str | Step,
    args: Sequence[str] | None = None,
    *,
    task_id: str | None = None,
    runner: str | None = None,
    retries: int = DEFAULT_RETRIES,
    execution_timeout: timedelta | None = None,
    notify_success: bool = False,
    **operator_kwargs: Any,
) -> Any:
    """Returns an operator that runs ``driftwood <step> <args>`` with the configured runner.

    Every task reports failures to Slack (when the ``driftwood_slack`` connection exists); a DAG's
    last task also reports success (``notify_success``) and a gate not passed (skipped).
    """
    spec = step if isinstance(step, Step) else Step(step)
    if args is not None:
        spec = replace(spec, args=tuple(args))
    chosen = configured_runner(runner)
    task_id = task_id or spec.name
    if spec.module:
        # An MLflow step never ends with "nothing to act on"; its failures still page.
        notify_success = False
    common: dict[str, Any] = {
        "task_id": task_id,
        "retries": retries,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
        "max_retry_delay": MAX_RETRY_DELAY,
        "execution_timeout": execution_timeout or spec.timeout,
        "on_failure_callback": [failure_notifier()],
        # The step's lines in the task log come from `driftwood.<task id>`.
        "logger_name": f"driftwood.{task_id}",
        **(
            {"on_success_callback": [success_notifier()], "on_skipped_callback": [skipped_notifier()]}
            if notify_success
            else {}
        ),
        **operator_kwargs,
    }
    if chosen == "process":
        return _process_operator(spec, common)
    image = (
        os.environ.get("DRIFTWOOD_MLFLOW_IMAGE", DEFAULT_MLFLOW_IMAGE)
        if spec.module
        else os.environ.get("DRIFTWOOD_TASKS_IMAGE", DEFAULT_IMAGE)
    )
    if chosen == "docker":
        return _docker_operator(spec, image, common)
    return _kubernetes_operator(spec, image, common)


def step_outcome(step: str, exit_code: int, error: str | None) -> BaseException | None:
    """What a step's exit means to Airflow, the same for every runner: None when it succeeded, else
    the exception the task ends with, carrying the step's own ``<CODE>: <message>`` when it gave
    one. 99 skips the task; 2 fails it without a retry (AirflowFailException); any other code fails
    it for a retry."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

    if exit_code == 0:
        return None
    said = error or f"driftwood {step} exited {exit_code}"
    if exit_code == EXIT_GATE_NOT_PASSED:
        return AirflowSkipException(f"{said} (exit {exit_code}: nothing to act on; skipped)")
    if exit_code == EXIT_NOT_RETRYABLE:
        return AirflowFailException(
            f"{said} (exit {exit_code}: a usage, configuration or data error that a retry cannot fix; "
            "failing without retrying)"
        )
    return AirflowException(f"{said} (exit {exit_code}: a fault worth retrying)")


def _step_log(logger: Any, env: dict[str, str] | None = None) -> StepLog:
    """A reader of one step's output that writes on the task's logger; the MLflow links point at the
    UI the step's settings name."""
    return StepLog(logger, mlflow_ui_url({**os.environ, **(env or {})}))


@cache
def _step_bash_operator() -> type:
    """BashOperator whose step output reads as log lines and whose failure says what the step said."""
    from airflow.providers.standard.hooks.subprocess import SubprocessHook
    from airflow.providers.standard.operators.bash import BashOperator

    class StepSubprocessHook(SubprocessHook):
        step_log: StepLog | None = None

        @property
        def log(self) -> Any:
            base = super().log
            return LineRouter(base, self.step_log) if self.step_log else base

    class StepBashOperator(BashOperator):
        @cached_property
        def subprocess_hook(self) -> SubprocessHook:
            return StepSubprocessHook()

        def _run_inline_command(self, bash_path: str, env: dict[str, str]) -> Any:
            hook = self.subprocess_hook
            hook.step_log = _step_log(self.log, env)
            result = super()._run_inline_command(bash_path=bash_path, env=env)
            outcome = step_outcome(self.task_id, result.exit_code, hook.step_log.error)
            if outcome is not None:
                raise outcome
            return result

    return StepBashOperator


# How DockerOperator names the exit status in its failure: "Docker container failed: {'StatusCode': 2…".
_DOCKER_STATUS = re.compile(r"'StatusCode': (\d+)")


@cache
def _step_docker_operator() -> type:
    """DockerOperator whose step output reads as log lines and whose failure says what the step said."""
    from airflow.providers.docker.exceptions import (
        DockerContainerFailedException,
        DockerContainerFailedSkipException,
    )
    from airflow.providers.docker.operators.docker import DockerOperator

    class StepDockerOperator(DockerOperator):
        _step_log: StepLog | None = None

        @property
        def step_log(self) -> StepLog:
            """What this try's container wrote: its lines, its failure."""
            if self._step_log is None:
                self._step_log = _step_log(super().log, self.environment)
            return self._step_log

        @property
        def log(self) -> Any:
            # The container's lines (the provider's fetch_logs: log.info("%s", line)) go through the
            # StepLog; everything else the operator logs goes to its logger as before.
            return LineRouter(super().log, self.step_log)

        def execute(self, context: Any) -> Any:
            self._step_log = None
            try:
                return super().execute(context)
            except (DockerContainerFailedSkipException, DockerContainerFailedException) as err:
                if isinstance(err, DockerContainerFailedSkipException):
                    exit_code: int | None = EXIT_GATE_NOT_PASSED
                else:
                    status = _DOCKER_STATUS.search(str(err))
                    exit_code = int(status.group(1)) if status else None
                outcome = (
                    None if exit_code is None else step_outcome(self.task_id, exit_code, self.step_log.error)
                )
                if outcome is None:
                    raise
                raise outcome from err

    return StepDockerOperator


def _process_operator(spec: Step, common: dict[str, Any]) -> Any:
    root = project_root()
    env = step_env()
    if spec.module:
        # The checkout's mlflow venv (make install), as the Spark scoring job's python.
        words = [str(root / ".venvs" / "mlflow" / "bin" / "python"), "-m", spec.module, *spec.args]
        env["PYTHONPATH"] = str(root / "python")
    else:
        words = ["node", str(root / "tasks" / "dist" / "cli.js"), spec.name, *spec.args]
    return _step_bash_operator()(
        # Quoted before Jinja renders: rendered values (timestamps) carry no quotes of their own.
        bash_command=" ".join(shlex.quote(w) for w in words),
        cwd=str(root),
        env=env,
        # Secrets reach the step from the worker's own environment, never from the rendered task.
        append_env=True,
        skip_on_exit_code=EXIT_GATE_NOT_PASSED,
        **common,
    )


def _docker_operator(spec: Step, image: str, common: dict[str, Any]) -> Any:
    # An MLflow step: the MLflow image's python (its entrypoint is the server); it reads no shared files.
    program = {"entrypoint": ["python", "-m", spec.module]} if spec.module else {}
    return _step_docker_operator()(
        image=image,
        **program,
        command=[*([] if spec.module else [spec.name]), *spec.args],
        environment=container_env(),
        # Not a template field: never rendered into the UI or the metadata database.
        private_environment=secret_env(step_secrets(spec)),
        # Unset: the provider falls back to DOCKER_HOST, then the local socket.
        docker_url=os.environ.get("DRIFTWOOD_DOCKER_URL"),
        # The network where MLflow and the warehouse answer (the Compose project's network).
        network_mode=os.environ.get("DRIFTWOOD_DOCKER_NETWORK"),
        mounts=[] if spec.module else docker_mounts(),
        labels={"app.kubernetes.io/part-of": "driftwood", "driftwood.step": spec.name},
        auto_remove="success",
        mount_tmp_dir=False,
        skip_on_exit_code=EXIT_GATE_NOT_PASSED,
        **common,
    )


# Terraform's environments (terraform/modules/k8s-app: namespace `driftwood-<environment>`).
K8S_ENVIRONMENTS = ("staging", "production")
# The tasks image's user and writable home (docker/tasks.Dockerfile: USER 1000:1000).
POD_UID = 1000
POD_HOME = "/var/lib/driftwood"


def k8s_namespace() -> str:
    """The step pods' namespace: DRIFTWOOD_K8S_NAMESPACE, else Terraform's ``driftwood-<env>``."""
    if namespace := os.environ.get("DRIFTWOOD_K8S_NAMESPACE"):
        return namespace
    env = os.environ.get("DRIFTWOOD_ENV") or "production"
    if env not in K8S_ENVIRONMENTS:
        raise ValueError(
            f"DRIFTWOOD_ENV: expected one of {', '.join(K8S_ENVIRONMENTS)} "
            f"(or set DRIFTWOOD_K8S_NAMESPACE), got {env!r}"
        )
    return f"driftwood-{env}"


def pod_exit_code(pod: Any, container: str) -> int | None:
    """The exit code of the pod's step container, or None when it has not terminated (a pod that
    never ran the step: an image that cannot be pulled, an eviction)."""
    statuses = (pod.status.container_statuses if pod is not None and pod.status else None) or []
    status = next((s for s in statuses if s.name == container), None)
    terminated = status.state.terminated if status is not None and status.state else None
    return None if terminated is None else int(terminated.exit_code)


@cache
def _step_kubernetes_operator() -> type:
    """KubernetesPodOperator whose step output reads as log lines, and whose failure says what the
    step said and is retried or not as the exit code says (as the process and docker runners do)."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.cncf.kubernetes.utils.pod_manager import PodManager, is_log_group_marker
    from airflow.sdk.exceptions import AirflowException, AirflowSkipException

    class StepPodManager(PodManager):
        """Writes the step container's lines through the operator's StepLog (``step_log``)."""

        step_log: Callable[[], StepLog] | None = None

        def _log_message(
            self,
            message: str,
            container_name: str,
            container_name_log_prefix_enabled: bool,
            log_formatter: Any,
        ) -> None:
            if self.step_log is None or is_log_group_marker(message):
                super()._log_message(
                    message, container_name, container_name_log_prefix_enabled, log_formatter
                )
                return
            self.step_log().read(message)

    class StepKubernetesPodOperator(KubernetesPodOperator):
        _step_log: StepLog | None = None

        @property
        def step_log(self) -> StepLog:
            """What this try's pod wrote: its lines, its failure."""
            if self._step_log is None:
                self._step_log = _step_log(self.log)
            return self._step_log

        @cached_property
        def pod_manager(self) -> PodManager:
            manager = StepPodManager(kube_client=self.client, callbacks=self.callbacks)
            manager.step_log = lambda: self.step_log
            return manager

        def execute(self, context: Any) -> Any:
            self._step_log = None
            return super().execute(context)

        def cleanup(
            self,
            pod: Any,
            remote_pod: Any,
            xcom_result: dict[str, Any] | None = None,
            context: Any = None,
        ) -> None:
            try:
                super().cleanup(pod=pod, remote_pod=remote_pod, xcom_result=xcom_result, context=context)
            except (AirflowSkipException, AirflowException) as err:
                exit_code = pod_exit_code(remote_pod, self.base_container_name)
                outcome = (
                    None if exit_code is None else step_outcome(self.task_id, exit_code, self.step_log.error)
                )
                if outcome is None:
                    raise
                raise outcome from err

    return StepKubernetesPodOperator


def _kubernetes_operator(spec: Step, image: str, common: dict[str, Any]) -> Any:
    from airflow.providers.cncf.kubernetes.secret import Secret
    from kubernetes.client import models as k8s

    secret_name = os.environ.get("DRIFTWOOD_K8S_SECRET", "driftwood-tasks")
    uid = MLFLOW_POD_UID if spec.module else POD_UID
    # Who the step runs as, set on the pod and on its container alike.
    identity: dict[str, Any] = {
        "run_as_non_root": True,
        "run_as_user": uid,
        "run_as_group": uid,
        "seccomp_profile": k8s.V1SeccompProfile(type="RuntimeDefault"),
    }
    # The image's DRIFTWOOD_HOME (an emptyDir), not the worker's; an MLflow step's HOME is that
    # emptyDir too (matplotlib and MLflow write their caches under HOME; the root is read-only).
    env_vars = container_env("DRIFTWOOD_HOME")
    if spec.module:
        env_vars["HOME"] = POD_HOME
    return _step_kubernetes_operator()(
        image=image,
        cmds=["python", "-m", spec.module] if spec.module else ["node", IMAGE_CLI],
        arguments=[*([] if spec.module else [spec.name]), *spec.args],
        namespace=k8s_namespace(),
        service_account_name=os.environ.get("DRIFTWOOD_K8S_SERVICE_ACCOUNT", "driftwood-tasks"),
        # The steps never call the Kubernetes API (IRSA injects its own token for AWS).
        automount_service_account_token=False,
        env_vars=env_vars,
        secrets=[Secret("env", name, secret_name, SECRET_ENV[name]) for name in step_secrets(spec)],
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": spec.cpu[0], "memory": spec.memory[0]},
            limits={"cpu": spec.cpu[1], "memory": spec.memory[1]},
        ),
        # Pod Security Admission `restricted`, which the Terraform namespace enforces.
        security_context=k8s.V1PodSecurityContext(**identity, fs_group=uid),
        container_security_context=k8s.V1SecurityContext(
            **identity,
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
        # The root filesystem is read-only: the step writes only its home and the temp folder.
        volumes=[
            k8s.V1Volume(name="home", empty_dir=k8s.V1EmptyDirVolumeSource()),
            k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
        ],
        volume_mounts=[
            k8s.V1VolumeMount(name="home", mount_path=POD_HOME),
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
        ],
        # A pod name is a DNS label: no underscores.
        name=f"driftwood-{spec.name.replace('_', '-')}",
        labels={"app.kubernetes.io/part-of": "driftwood", "driftwood/step": spec.name},
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        skip_on_exit_code=EXIT_GATE_NOT_PASSED,
        **common,
    )


def chain_steps(names: Sequence[str], steps: dict[str, Step]) -> list[Any]:
    """Builds the named steps in order, chained; the last one also reports success."""
    unknown = [n for n in names if n not in steps]
    if unknown:
        raise ValueError(f"steps: unknown {', '.join(unknown)}; known: {', '.join(steps)}")
    tasks = [step_task(steps[n], notify_success=(i == len(names) - 1)) for i, n in enumerate(names)]
    for upstream, downstream in pairwise(tasks):
        upstream >> downstream
    return tasks
