"""DAG integrity: every DAG imports, has no cycles, is tagged and retries, and the step helper
renders the right operator for each runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

import driftwood_steps

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


def test_every_dag_imports(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert "churn_pipeline" in dagbag.dags


def test_dags_are_tagged_documented_and_safe(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert dag.catchup is False, f"{dag_id} must not catch up by itself"
        assert dag.max_active_runs == 1, f"{dag_id} must run one at a time"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries {task.retries} < 2"
            assert task.execution_timeout is not None, f"{dag_id}.{task.task_id} has no timeout"


def test_no_cycles_and_the_expected_order(dagbag: DagBag) -> None:
    dag = dagbag.dags["churn_pipeline"]
    order = [t.task_id for t in dag.topological_sort()]
    assert order == ["ingest", "train", "promote"]


def test_process_runner_runs_the_cli_and_maps_the_gate_to_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWOOD_RUNNER", "process")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    task = driftwood_steps.step_task("train", ["--dataset", "churn"])
    assert type(task).__name__ == "BashOperator"
    assert task.bash_command.startswith("node ")
    assert task.bash_command.endswith("tasks/dist/cli.js train --dataset churn")
    assert task.skip_on_exit_code == [99]
    assert task.env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_docker_runner_renders_a_docker_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWOOD_TASKS_IMAGE", "registry.example/driftwood-tasks:1.2.3")
    monkeypatch.setenv("DRIFTWOOD_PII_KEY", "do-not-leak")
    task = driftwood_steps.step_task("ingest", ["--dataset", "churn"], runner="docker")
    assert type(task).__name__ == "DockerOperator"
    assert task.image == "registry.example/driftwood-tasks:1.2.3"
    assert task.command == ["ingest", "--dataset", "churn"]
    assert "do-not-leak" not in repr(task.command)
    assert "DRIFTWOOD_PII_KEY" not in task.environment


def test_kubernetes_runner_renders_a_pod_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWOOD_K8S_NAMESPACE", "driftwood-staging")
    task = driftwood_steps.step_task("promote", [], runner="kubernetes")
    assert type(task).__name__ == "KubernetesPodOperator"
    assert task.namespace == "driftwood-staging"
    assert task.cmds == ["node", "/app/tasks/dist/cli.js"]
    assert task.arguments == ["promote"]


def test_an_unknown_runner_is_refused() -> None:
    with pytest.raises(ValueError, match="DRIFTWOOD_RUNNER: expected one of process, docker, kubernetes"):
        driftwood_steps.configured_runner("ssh")
