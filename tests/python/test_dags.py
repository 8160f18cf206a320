"""DAG integrity and runner rendering: every DAG imports, has no cycles, is tagged, documented, safe
to catch up and retries with backoff and timeouts; the step helper renders the right operator for
each runner with secrets kept out of arguments and rendered fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import driftwood_notify
import driftwood_steps
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.serialization.serialized_objects import DagSerialization

DAGS = Path(__file__).resolve().parents[2] / "dags"
EXPECTED_DAGS = {
    "churn_pipeline",
    "churn_retrain",
    "churn_scoring",
    "churn_experiments",
    "btc_forecast",
    "btc_retrain",
}
SECRET_VALUES = {
    "DRIFTWOOD_PII_KEY": "pii-key-do-not-leak",
    "DRIFTWOOD_WAREHOUSE_URL": "postgres://driftwood:hunter2-do-not-leak@db/driftwood",
    "MLFLOW_TRACKING_TOKEN": "token-do-not-leak",
    "DRIFTWOOD_INGEST_ALERT_WEBHOOK": "https://hooks.slack.com/services/T0/B0/webhook-do-not-leak",
}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_VALUES.items():
        monkeypatch.setenv(name, value)
        monkeypatch.delenv(f"{name}_FILE", raising=False)


@pytest.fixture
def docker_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No secret, secret file or volume setting from the worker running the tests."""
    for name in driftwood_steps.SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.delenv("DRIFTWOOD_DOCKER_VOLUMES", raising=False)
    return monkeypatch


def _leaks(rendered: object) -> list[str]:
    text = repr(rendered)
    return [v for v in SECRET_VALUES.values() if v in text]


def test_every_dag_imports(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == EXPECTED_DAGS


def test_dags_are_tagged_documented_and_safe(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert "driftwood" in dag.tags, f"{dag_id} has no driftwood tag"
        assert dag.doc_md and dag.doc_md.startswith(f"# {dag_id}: the "), f"{dag_id} has no doc_md"
        assert {"scheduled", "retrain"} & set(dag.tags), f"{dag_id} is not tagged scheduled or retrain"
        assert dag.catchup is False, f"{dag_id} must not catch up by itself"
        assert dag.max_active_runs == 1, f"{dag_id} must run one at a time"
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            assert task.retries >= 2, f"{where} retries {task.retries} < 2"
            assert task.retry_exponential_backoff, f"{where} retries without backoff"
            assert task.max_retry_delay == driftwood_steps.MAX_RETRY_DELAY, where
            assert task.execution_timeout is not None, f"{where} has no timeout"
            assert task.skip_on_exit_code == [driftwood_steps.EXIT_GATE_NOT_PASSED], where
            assert any(
                isinstance(cb, driftwood_notify.DriftwoodSlackNotifier) for cb in task.on_failure_callback
            )


def test_no_cycles_and_the_expected_order(dagbag: DagBag) -> None:
    pipeline = dagbag.dags["churn_pipeline"]
    assert [t.task_id for t in pipeline.topological_sort()] == [
        "ingest",
        "snapshot",
        "features",
        "train",
        "evaluate",
        "promote",
        "mlflow_evaluate",
    ]
    train = pipeline.get_task("train")
    run_end = driftwood_steps.RUN_END
    assert train.bash_command.endswith(f"train --dataset churn --snapshot-as-of '{run_end}'")
    retrain = dagbag.dags["churn_retrain"]
    assert [t.task_id for t in retrain.topological_sort()] == ["train", "promote", "mlflow_evaluate"]
    assert retrain.get_task("train").bash_command.endswith("train --dataset churn --snapshot-as-of latest")
    # evaluate and promote name their dataset too (not the CLI's default).
    assert pipeline.get_task("evaluate").bash_command.endswith("evaluate --dataset churn")
    for dag in (pipeline, retrain):
        assert dag.get_task("promote").bash_command.endswith("promote --dataset churn --alias champion")
        # MLflow's evaluation of the version train registered, after promote, never ahead of it.
        evaluate = dag.get_task("mlflow_evaluate")
        assert evaluate.bash_command.endswith("-m driftwood_mlflow.evaluate --model churn --alias challenger")
        assert evaluate.upstream_task_ids == {"train", "promote"}
        assert evaluate.trigger_rule == "none_failed_min_one_success"
        assert not evaluate.downstream_task_ids and not evaluate.on_success_callback


def test_mlflow_evaluate_off_leaves_it_out_and_a_typo_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import driftwood_dags

    monkeypatch.setenv("DRIFTWOOD_MLFLOW_EVALUATE", "off")
    dags = driftwood_dags.build_all()
    assert [t.task_id for t in dags["churn_retrain"].topological_sort()] == ["train", "promote"]
    assert "mlflow_evaluate" not in dags["churn_pipeline"].task_ids
    assert "mlflow_evaluate" not in (dags["churn_pipeline"].doc_md or "")
    monkeypatch.setenv("DRIFTWOOD_MLFLOW_EVALUATE", "no")
    with pytest.raises(ValueError, match="DRIFTWOOD_MLFLOW_EVALUATE must be on or off"):
        driftwood_dags.build_all()


def test_schedules_hourly_pipeline_and_asset_triggered_retrain(dagbag: DagBag) -> None:
    pipeline = dagbag.dags["churn_pipeline"]
    # Every hour, and whenever new raw data lands (an event on the raw prefix's asset).
    assert type(pipeline.timetable).__name__ == "AssetOrTimeSchedule"
    hourly = pipeline.timetable.timetable
    assert type(hourly).__name__ == "CronTriggerTimetable"
    assert hourly.expression == "0 * * * *"
    raw = pipeline.timetable.asset_condition.objects
    assert [(a.name, a.uri) for a in raw] == [("churn_raw", "driftwood://churn/raw")]
    # What the scheduler reads back from the serialized DAG: both triggers survive.
    stored = DagSerialization.from_dict(DagSerialization.to_dict(pipeline)).timetable
    assert stored.description == "Triggered by assets or Every hour"
    assert "driftwood://churn/raw" in repr(stored.asset_condition)
    retrain = dagbag.dags["churn_retrain"]
    assets = retrain.timetable.asset_condition.objects
    assert [(a.name, a.uri) for a in assets] == [("churn_drift", "driftwood://churn/drift")]


def test_per_task_limits_and_notifications(dagbag: DagBag) -> None:
    tasks = {t.task_id: t for t in dagbag.dags["churn_pipeline"].tasks}
    assert tasks["ingest"].execution_timeout == timedelta(minutes=20)
    assert tasks["train"].execution_timeout == timedelta(minutes=60)
    assert tasks["promote"].execution_timeout == timedelta(minutes=10)
    # Only the last task reports success and a gate not passed; every task reports failure.
    assert tasks["promote"].on_success_callback and tasks["promote"].on_skipped_callback
    assert not tasks["ingest"].on_success_callback and not tasks["train"].on_success_callback


def test_ingest_loads_up_to_the_end_of_the_data_interval(dagbag: DagBag) -> None:
    pipeline = dagbag.dags["churn_pipeline"]
    run_end = driftwood_steps.RUN_END
    assert pipeline.get_task("ingest").bash_command.endswith(f"ingest --dataset churn --until '{run_end}'")
    assert pipeline.get_task("snapshot").bash_command.endswith(
        f"snapshot --dataset churn --as-of '{run_end}'"
    )


@pytest.mark.parametrize(
    ("interval_end", "expected"),
    [
        # An hourly run: the end of its data interval.
        (datetime(2026, 11, 3, 10, tzinfo=UTC), "--until '2026-11-03T10:00:00+00:00'"),
        # A run the lake's landing event started has no data interval: the landed partition's end,
        # which the event carries (tests/python/test_landing_as_of.py has the other cases).
        (None, "--until '2026-11-03T08:00:00+00:00'"),
    ],
)
def test_ingest_renders_for_hourly_and_asset_triggered_runs(
    dagbag: DagBag, interval_end: datetime | None, expected: str
) -> None:
    from airflow.sdk.execution_time import macros

    ingest = dagbag.dags["churn_pipeline"].get_task("ingest")
    landing = SimpleNamespace(extra={"driftwood_as_of": "2026-11-03T08:00:00+00:00"})
    dag_run = SimpleNamespace(
        data_interval_end=interval_end,
        run_after=datetime(2026, 11, 3, 10, 17, tzinfo=UTC),
        consumed_asset_events=[] if interval_end else [landing],
    )
    rendered = ingest.render_template(ingest.bash_command, {"dag_run": dag_run, "macros": macros})
    assert rendered.endswith(f"ingest --dataset churn {expected}")


def test_process_runner_runs_the_cli_and_maps_the_gate_to_skipped(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("DRIFTWOOD_RUNNER", "process")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    task = driftwood_steps.step_task("train", ["--dataset", "churn"])
    assert isinstance(task, BashOperator)
    assert task.bash_command.startswith("node ")
    assert task.bash_command.endswith("tasks/dist/cli.js train --dataset churn")
    assert task.skip_on_exit_code == [99]
    assert task.env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # Secrets reach the step from the worker's environment (append_env), not from the task's fields.
    assert task.append_env is True
    assert _leaks(task.bash_command) == [] and _leaks(task.env) == []


@pytest.mark.parametrize(
    ("exit_code", "raised"),
    [(2, AirflowFailException), (1, AirflowException), (99, AirflowSkipException)],
)
def test_process_runner_fails_without_retry_only_on_a_non_retryable_exit(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None, exit_code: int, raised: type[Exception]
) -> None:
    """Exit 2 (usage, config, data missing, not found) fails at once; 1 is retried; 99 is skipped."""
    monkeypatch.setenv("DRIFTWOOD_RUNNER", "process")
    task = driftwood_steps.step_task("train", ["--dataset", "churn"])
    # The real operator, running a command that exits as the step would.
    task.bash_command = f"exit {exit_code}"
    with pytest.raises(raised) as caught:
        task.execute(context={})
    # AirflowFailException is what stops Airflow from retrying; a retryable exit must not raise it.
    assert isinstance(caught.value, AirflowFailException) == (exit_code == 2)
    if exit_code == 2:
        assert "without retrying" in str(caught.value)


def test_docker_runner_renders_a_docker_operator(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("DRIFTWOOD_TASKS_IMAGE", "registry.example/driftwood-tasks:1.2.3")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    ingest = driftwood_steps.dataset_steps("churn", driftwood_steps.INTERVAL_END)["ingest"]
    task = driftwood_steps.step_task(ingest, runner="docker")
    assert isinstance(task, DockerOperator)
    assert task.image == "registry.example/driftwood-tasks:1.2.3"
    assert task.command == ["ingest", "--dataset", "churn", "--until", "{{ data_interval_end }}"]
    assert task.environment == {
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "AIRFLOW_CTX_DAG_RUN_ID": "{{ run_id }}",
    }
    assert task.skip_on_exit_code == [99]
    # Secrets go as private environment: not a template field, never rendered or stored.
    assert "private_environment" not in task.template_fields
    assert task._private_environment == SECRET_VALUES
    rendered = {name: getattr(task, name) for name in task.template_fields}
    assert _leaks(rendered) == []


def test_docker_runner_mounts_the_configured_volumes(docker_env: pytest.MonkeyPatch) -> None:
    docker_env.setenv("DRIFTWOOD_DOCKER_VOLUMES", "driftwood-data:/var/lib/driftwood")
    task = driftwood_steps.step_task("ingest", runner="docker")
    assert [(m["Type"], m["Source"], m["Target"]) for m in task.mounts] == [
        ("volume", "driftwood-data", "/var/lib/driftwood")
    ]


@pytest.mark.parametrize("value", ["driftwood-data", "driftwood-data:relative/path", ":/var/lib/driftwood"])
def test_docker_runner_refuses_a_malformed_volume_setting(docker_env: pytest.MonkeyPatch, value: str) -> None:
    docker_env.setenv("DRIFTWOOD_DOCKER_VOLUMES", value)
    with pytest.raises(ValueError, match=r"^DRIFTWOOD_DOCKER_VOLUMES: expected volume:/path"):
        driftwood_steps.step_task("ingest", runner="docker")


@pytest.mark.parametrize("name", ["DRIFTWOOD_PII_KEY", "DRIFTWOOD_WAREHOUSE_URL"])
def test_docker_runner_reads_a_secret_from_its_file(
    docker_env: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(f"{SECRET_VALUES[name]}\n")
    docker_env.setenv(f"{name}_FILE", str(secret))
    task = driftwood_steps.step_task("ingest", runner="docker")
    # The container gets the file's content as private environment, not the worker's path to it.
    assert task._private_environment == {name: SECRET_VALUES[name]}
    assert f"{name}_FILE" not in task.environment
    assert str(secret) not in repr({field: getattr(task, field) for field in task.template_fields})


def test_kubernetes_runner_renders_a_pod_operator(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("DRIFTWOOD_K8S_NAMESPACE", "driftwood-staging")
    monkeypatch.setenv("DRIFTWOOD_K8S_SERVICE_ACCOUNT", "driftwood-runner")
    monkeypatch.setenv("DRIFTWOOD_K8S_SECRET", "driftwood-staging-secrets")
    monkeypatch.setenv("DRIFTWOOD_TASKS_IMAGE", "registry.example/driftwood-tasks:1.2.3")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    task = driftwood_steps.step_task(driftwood_steps.dataset_steps("churn")["train"], runner="kubernetes")
    assert isinstance(task, KubernetesPodOperator)
    assert task.image == "registry.example/driftwood-tasks:1.2.3"
    assert task.namespace == "driftwood-staging"
    assert task.service_account_name == "driftwood-runner"
    assert task.cmds == ["node", "/app/tasks/dist/cli.js"]
    assert task.arguments == ["train", "--dataset", "churn", "--snapshot-as-of", driftwood_steps.RUN_END]
    assert task.skip_on_exit_code == [99]
    assert task.container_resources.requests == {"cpu": "1", "memory": "2Gi"}
    assert task.container_resources.limits == {"cpu": "2", "memory": "4Gi"}
    assert task.env_vars == {
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "AIRFLOW_CTX_DAG_RUN_ID": "{{ run_id }}",
    }
    # Each secret comes from the Kubernetes secret as an env var reference, never as a value.
    refs = {s.deploy_target: (s.secret, s.key) for s in task.secrets}
    assert refs == {
        "DRIFTWOOD_PII_KEY": ("driftwood-staging-secrets", "pii-key"),
        "DRIFTWOOD_WAREHOUSE_URL": ("driftwood-staging-secrets", "warehouse-url"),
        "MLFLOW_TRACKING_TOKEN": ("driftwood-staging-secrets", "mlflow-tracking-token"),
        "DRIFTWOOD_INGEST_ALERT_WEBHOOK": ("driftwood-staging-secrets", "ingest-alert-webhook"),
    }
    assert all(s.deploy_type == "env" for s in task.secrets)
    rendered = {name: getattr(task, name) for name in task.template_fields}
    assert _leaks(rendered) == [] and _leaks(task.secrets) == []


def test_the_pod_spec_carries_secret_refs_and_resources(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    for name in (
        "DRIFTWOOD_K8S_NAMESPACE",
        "DRIFTWOOD_ENV",
        "DRIFTWOOD_K8S_SERVICE_ACCOUNT",
        "DRIFTWOOD_K8S_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    task = driftwood_steps.step_task(driftwood_steps.dataset_steps("churn")["promote"], runner="kubernetes")
    pod = task.build_pod_request_obj(dry_run=True)
    container = pod.spec.containers[0]
    # Terraform's production namespace when DRIFTWOOD_ENV is unset.
    assert pod.metadata.namespace == "driftwood-production"
    assert pod.spec.service_account_name == "driftwood-tasks"
    assert container.resources.requests == {"cpu": "250m", "memory": "512Mi"}
    refs = {e.name: e.value_from.secret_key_ref.name for e in container.env if e.value_from}
    assert refs == dict.fromkeys(SECRET_VALUES, "driftwood-tasks")
    assert _leaks(pod.to_dict()) == []


def test_the_runner_comes_from_env_then_the_airflow_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTWOOD_RUNNER", raising=False)
    # Airflow resolves Variables from AIRFLOW_VAR_<NAME> before its database.
    monkeypatch.setenv("AIRFLOW_VAR_DRIFTWOOD_RUNNER", "kubernetes")
    assert driftwood_steps.configured_runner() == "kubernetes"
    monkeypatch.setenv("DRIFTWOOD_RUNNER", "docker")
    assert driftwood_steps.configured_runner() == "docker"
    assert driftwood_steps.configured_runner("process") == "process"


def test_an_unknown_runner_or_step_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="DRIFTWOOD_RUNNER: expected one of process, docker, kubernetes"):
        driftwood_steps.configured_runner("ssh")
    monkeypatch.setenv("AIRFLOW_VAR_DRIFTWOOD_RUNNER", "lambda")
    monkeypatch.delenv("DRIFTWOOD_RUNNER", raising=False)
    with pytest.raises(ValueError, match="got 'lambda'"):
        driftwood_steps.configured_runner()
    with pytest.raises(ValueError, match="steps: unknown score; known: extract, ingest, snapshot, features"):
        driftwood_steps.chain_steps(["train", "score"], driftwood_steps.dataset_steps("churn"))


def test_mlflow_evaluate_runs_in_the_mlflow_image_with_the_mlflow_token_alone(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    """The MLflow step in a container: the MLflow image's python, its arguments, no shared volume,
    and of the worker's secrets only the MLflow token (it talks to MLflow and nothing else)."""
    monkeypatch.setenv("DRIFTWOOD_MLFLOW_IMAGE", "registry.example/driftwood-mlflow:1.2.3")
    monkeypatch.setenv("DRIFTWOOD_DOCKER_VOLUMES", "driftwood-data:/var/lib/driftwood")
    monkeypatch.setenv("DRIFTWOOD_K8S_NAMESPACE", "driftwood-staging")
    step = driftwood_steps.mlflow_evaluate_step("churn")
    docker = driftwood_steps.step_task(step, runner="docker")
    assert (docker.image, docker.entrypoint) == (
        "registry.example/driftwood-mlflow:1.2.3",
        ["python", "-m", "driftwood_mlflow.evaluate"],
    )
    assert docker.command == ["--model", "churn", "--alias", "challenger"]
    assert docker.mounts == []
    assert docker._private_environment == {"MLFLOW_TRACKING_TOKEN": SECRET_VALUES["MLFLOW_TRACKING_TOKEN"]}
    pod = driftwood_steps.step_task(step, runner="kubernetes")
    assert pod.image == "registry.example/driftwood-mlflow:1.2.3"
    assert (pod.cmds, pod.arguments) == (
        ["python", "-m", "driftwood_mlflow.evaluate"],
        ["--model", "churn", "--alias", "challenger"],
    )
    assert [(s.deploy_target, s.key) for s in pod.secrets] == [
        ("MLFLOW_TRACKING_TOKEN", "mlflow-tracking-token")
    ]
    # The MLflow image's user, its HOME on the pod's writable emptyDir, a DNS-label pod name.
    assert pod.security_context.run_as_user == 10001 and pod.env_vars["HOME"] == "/var/lib/driftwood"
    assert pod.name.startswith("driftwood-mlflow-evaluate")
    assert pod.container_security_context.read_only_root_filesystem is True
