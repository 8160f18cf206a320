"""Static checks of the GitHub Actions workflows: each validates against the GitHub workflow JSON
schema (check-jsonschema's vendored copy, offline; actionlint itself runs in the ci workflow), the
triggers follow the branch model in CONTRIBUTING.md, the pipeline has the stages the release
process needs, and every script or Dockerfile a step names exists and parses."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
TOOLS = ROOT / ".venvs" / "tools" / "bin"
COMPONENTS = ["tasks", "serving", "airflow", "evidently", "mlflow"]


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make install` (requirements/tools.lock provides {name})")
    return str(path)


def load(name: str) -> dict:
    spec = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    spec["on"] = spec.pop(True, spec.get("on"))
    return spec


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def all_runs(spec: dict) -> str:
    return "\n".join(s.get("run", "") for job in spec["jobs"].values() for s in steps(job))


def uses(spec: dict) -> list[str]:
    return [s["uses"] for job in spec["jobs"].values() for s in steps(job) if "uses" in s]


def test_workflows_validate_against_the_github_schema() -> None:
    files = sorted(WORKFLOWS.glob("*.yaml"))
    assert [f.name for f in files] == ["ci.yaml", "release.yaml", "train.yaml"]
    r = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.dependabot",
            str(ROOT / ".github/dependabot.yml"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_ci_runs_on_every_branch_of_the_model_and_on_pull_requests() -> None:
    on = load("ci.yaml")["on"]
    assert set(on["push"]["branches"]) >= {"main", "staging", "dev", "feature/**"}
    assert set(on["pull_request"]["branches"]) == {"main", "staging", "dev"}
    assert "workflow_call" in on  # the release reuses it
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    for branch in ("main", "staging", "dev", "feature/"):
        assert f"`{branch}" in contributing, f"CONTRIBUTING.md does not describe {branch}"


def test_ci_lints_tests_builds_scans_and_makes_sboms() -> None:
    ci = load("ci.yaml")
    jobs = ci["jobs"]
    assert {"lint", "test", "build-steps", "images"} <= set(jobs)
    runs = all_runs(ci)
    assert "make lint" in runs and "actionlint" in runs and "bash .ci/run" in runs
    assert "postgres" in jobs["test"]["services"]
    images = jobs["images"]
    assert images["strategy"]["matrix"]["component"] == COMPONENTS
    trivy = [s for s in steps(images) if str(s.get("uses", "")).startswith("aquasecurity/trivy-action")]
    gate = [s for s in trivy if s["with"].get("exit-code") == "1"]
    assert gate and gate[0]["with"]["severity"] == "CRITICAL", "no Trivy step fails the job on CRITICAL"
    assert any(str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif") for s in steps(images))
    assert any(str(s.get("uses", "")).startswith("anchore/sbom-action") for s in steps(images))
    build = next(s for s in steps(images) if str(s.get("uses", "")).startswith("docker/build-push-action"))
    assert build["with"]["file"] == "docker/${{ matrix.component }}.Dockerfile"
    for c in COMPONENTS:
        assert (ROOT / "docker" / f"{c}.Dockerfile").exists()
    # The build steps run outside Docker with the Dockerfiles' own commands.
    build_steps = "\n".join(s.get("run", "") for s in steps(jobs["build-steps"]))
    for command in ("npm install --ignore-scripts", "npx tsc -b tasks serving", "npm prune --omit=dev"):
        assert command in build_steps
        assert command in (ROOT / "docker/tasks.Dockerfile").read_text()


def test_release_pushes_deploys_staging_then_canaries_production() -> None:
    release = load("release.yaml")
    on = release["on"]
    assert set(on["push"]["branches"]) == {"main", "staging"} and on["push"]["tags"] == ["v*.*.*"]
    jobs = release["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yaml"
    publish = jobs["publish"]
    assert publish["needs"] == ["ci"]
    logins = [s for s in steps(publish) if str(s.get("uses", "")).startswith("docker/login-action")]
    assert {s["with"].get("registry", "docker.io") for s in logins} == {"ghcr.io", "docker.io"}
    staging, production = jobs["deploy-staging"], jobs["deploy-production"]
    assert staging["needs"] == ["publish"] and production["needs"] == ["deploy-staging"]
    assert staging["environment"]["name"] == "staging" and production["environment"]["name"] == "production"
    staging_runs = "\n".join(s.get("run", "") for s in steps(staging))
    assert "champion-version.sh" in staging_runs and "smoke.sh" in staging_runs
    production_runs = "\n".join(s.get("run", "") for s in steps(production))
    assert "for weight in 10 50 100" in production_runs and "canary-check.sh" in production_runs
    rollback = [s for s in steps(production) if "roll back" in s.get("name", "")]
    assert rollback and "failure()" in rollback[0]["if"] and "canary_weight=0" in rollback[0]["run"]
    # Production only from main or a tag, never from the staging branch.
    assert "refs/heads/main" in production["if"] and "refs/tags/v" in production["if"]


def test_train_is_scheduled_and_manual() -> None:
    on = load("train.yaml")["on"]
    assert on["schedule"][0]["cron"]
    assert "workflow_dispatch" in on


@pytest.mark.parametrize("name", ["ci.yaml", "release.yaml", "train.yaml"])
def test_actions_are_pinned_and_scripts_exist(name: str) -> None:
    spec = load(name)
    for ref in uses(spec):
        if ref.startswith("./"):
            assert (ROOT / ref).exists(), f"{name}: {ref} does not exist"
            continue
        assert "@" in ref and not ref.endswith(("@main", "@master")), f"{name}: {ref} is not pinned"
    for script in re.findall(r"((?:\.github/scripts|docker)/[\w.-]+\.sh)", all_runs(spec)):
        path = ROOT / script
        assert path.exists(), f"{name}: {script} does not exist"
        assert path.stat().st_mode & 0o111, f"{name}: {script} is not executable"
    assert spec.get("permissions"), f"{name}: set least-privilege top-level permissions"


def test_every_shell_script_parses() -> None:
    scripts = [*(ROOT / ".github/scripts").glob("*.sh"), *(ROOT / "docker").rglob("*.sh")]
    assert len(scripts) >= 8
    for script in scripts:
        r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert r.returncode == 0, f"{script}: {r.stderr}"


def test_readme_shows_the_ci_badge() -> None:
    assert "actions/workflows/ci.yaml/badge.svg" in (ROOT / "README.md").read_text()
