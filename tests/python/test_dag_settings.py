"""Every DRIFTWOOD_* setting the DAG files read reaches the compose stack's Airflow services and is
documented in .env.example: a setting the DAGs read but the stack never passes silently keeps its
default in containers (as the scoring engine once did). Settings that belong to another runner or
to the image's own layout are listed below with the reason, and must be in docs/orchestration.md;
the steps' own settings the worker forwards (PASSTHROUGH_ENV) the stack sets as the steps need."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml
from driftwood_steps import PASSTHROUGH_ENV

ROOT = Path(__file__).resolve().parents[2]

# Not passed by docker-compose.yml, each for a reason (and documented in docs/orchestration.md).
NOT_IN_COMPOSE = {
    "DRIFTWOOD_ROOT": "the image's layout is the default: dags/ under /opt/airflow",
    "DRIFTWOOD_DAG_CONTRACTS_DIR": "the image sets it (docker/airflow.Dockerfile ENV)",
    "DRIFTWOOD_DOCKER_URL": "the stack gives the Docker client DOCKER_HOST",
    "DRIFTWOOD_K8S_NAMESPACE": "the kubernetes runner's; the stack runs the docker runner",
    "DRIFTWOOD_K8S_SECRET": "the kubernetes runner's",
    "DRIFTWOOD_K8S_SERVICE_ACCOUNT": "the kubernetes runner's",
    "DRIFTWOOD_ENV": "the kubernetes runner's namespace suffix",
}
# Not in .env.example (the local, process-runner settings), each documented in docs/orchestration.md.
NOT_IN_ENV_EXAMPLE = {
    *NOT_IN_COMPOSE,
    "DRIFTWOOD_TASKS_IMAGE",  # the docker and kubernetes runners'
    "DRIFTWOOD_MLFLOW_IMAGE",  # the docker and kubernetes runners' (mlflow_evaluate's image)
    "DRIFTWOOD_DOCKER_NETWORK",  # the docker runner's
    "DRIFTWOOD_DOCKER_VOLUMES",  # the docker runner's
}


def dag_settings() -> set[str]:
    """The DRIFTWOOD_* names the DAG files read with os.environ.get(...) or os.environ[...]."""
    found: set[str] = set()
    for path in (ROOT / "dags").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            key: ast.expr | None = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                if node.func.attr == "get" and ast.unparse(node.func.value) == "os.environ":
                    key = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                key = node.slice
            if isinstance(key, ast.Constant) and str(key.value).startswith("DRIFTWOOD_"):
                found.add(str(key.value))
    return found


def test_the_dags_read_the_settings_this_test_knows() -> None:
    settings = dag_settings()
    # The walk finds what it must (a regression here would make the checks below vacuous).
    assert {"DRIFTWOOD_RUNNER", "DRIFTWOOD_SCORING_ENGINE", "DRIFTWOOD_SPARK_SUBMIT"} <= settings
    stale = (NOT_IN_COMPOSE.keys() | NOT_IN_ENV_EXAMPLE) - settings
    assert stale == set(), f"listed as exceptions but no longer read by the DAGs: {sorted(stale)}"


def test_every_dag_setting_reaches_the_stacks_airflow_services() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    airflow = [name for name in spec["services"] if name.startswith("airflow-")]
    assert {"airflow-scheduler", "airflow-dag-processor", "airflow-worker"} <= set(airflow)
    for name in airflow:
        passed = set(spec["services"][name].get("environment", {}))
        missing = sorted(dag_settings() - passed - NOT_IN_COMPOSE.keys() - set(PASSTHROUGH_ENV))
        assert missing == [], f"docker-compose.yml's {name} does not pass {missing} (x-airflow environment)"
    assert "ENV DRIFTWOOD_DAG_CONTRACTS_DIR=" in (ROOT / "docker" / "airflow.Dockerfile").read_text()


def test_every_dag_setting_is_in_env_example_or_the_orchestration_guide() -> None:
    example = (ROOT / ".env.example").read_text()
    named = {line.lstrip("# ").split("=", 1)[0] for line in example.splitlines() if "=" in line}
    missing = sorted(dag_settings() - named - NOT_IN_ENV_EXAMPLE)
    assert missing == [], (
        f".env.example does not name {missing}: add it there, or (another runner's setting) to "
        "NOT_IN_ENV_EXAMPLE here and to docs/orchestration.md"
    )
    guide = (ROOT / "docs" / "orchestration.md").read_text()
    undocumented = sorted(s for s in NOT_IN_ENV_EXAMPLE if s not in guide)
    assert undocumented == [], f"docs/orchestration.md does not document {undocumented}"
