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


# Settings the CLI's configuration reads that a step in its own container does not get, each for a
# reason; every other one must be in PASSTHROUGH_ENV or be a secret (SECRET_ENV, or its *_FILE,
# which the worker reads and hands over as the value).
NOT_FOR_STEPS = {
    "DRIFTWOOD_FORECAST_MODEL": "the API's: which forecast it serves",
    "DRIFTWOOD_EVIDENTLY_URL": "the dashboard's link to the drift sidecar",
    "DRIFTWOOD_MLFLOW_UI_URL": "the dashboard's link",
    "DRIFTWOOD_AIRFLOW_UI_URL": "the dashboard's link",
    "DRIFTWOOD_GRAFANA_URL": "the dashboard's link",
    "DRIFTWOOD_AIRFLOW_URL": "the API's retrain trigger and the lander's asset event, outside Airflow",
    "DRIFTWOOD_AIRFLOW_USER": "the API's retrain trigger and the lander",
    "DRIFTWOOD_AIRFLOW_PASSWORD": "the API's retrain trigger and the lander",
    "DRIFTWOOD_RETRAIN_DAG": "the API's retrain trigger",
}


def cli_settings() -> set[str]:
    """The DRIFTWOOD_* names tasks/src/config.ts reads (the CLI's and the API's configuration)."""
    import re

    text = (ROOT / "tasks" / "src" / "config.ts").read_text()
    return set(re.findall(r"['`](DRIFTWOOD_[A-Z0-9_]+)['`]", text))


def test_every_cli_setting_reaches_a_step_in_its_own_container() -> None:
    from driftwood_steps import SECRET_ENV

    settings = cli_settings()
    assert {"DRIFTWOOD_FEATURE_ENGINE", "DRIFTWOOD_LAKE_URI", "DRIFTWOOD_API_PORT"} <= settings
    secrets = {*SECRET_ENV, *(f"{name}_FILE" for name in SECRET_ENV)}
    stale = NOT_FOR_STEPS.keys() - settings
    assert stale == set(), f"listed as not for steps but no longer read: {sorted(stale)}"
    missing = sorted(
        s
        for s in settings - set(PASSTHROUGH_ENV) - secrets - NOT_FOR_STEPS.keys()
        if not s.startswith("DRIFTWOOD_API_")  # the API's own
    )
    assert missing == [], (
        f"a docker or kubernetes step would run without {missing}: add them to PASSTHROUGH_ENV in "
        "dags/driftwood_steps.py, or to NOT_FOR_STEPS here with the reason"
    )
