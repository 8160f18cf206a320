"""Static checks of docker-compose.yml (no Docker engine runs here): `docker-compose config`
accepts it, the whole stack is there with healthchecks and named volumes, secrets are files
created by docker/make-secrets.sh and never environment values, and the minimal profile is
self-contained."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKER_COMPOSE = "/usr/bin/docker-compose"

STACK = {
    "postgres",
    "minio",
    "mlflow",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "api-blue",
    "api-green",
    "api-proxy",
    "evidently",
    "prometheus",
    "alertmanager",
    "grafana",
}
ONE_SHOT = {"minio-init", "airflow-init", "volume-init", "mlflow-webhook-blue", "mlflow-webhook-green"}
MINIMAL = {"postgres", "minio", "minio-init", "mlflow", "mlflow-webhook-blue", "api-blue", "volume-init"}
# Secret files: in DRIFTWOOD_SECRETS_DIR, by default the git-ignored folder.
SECRETS_DEFAULT = "${DRIFTWOOD_SECRETS_DIR:-./.driftwood/secrets}/"


def compose_bin() -> str:
    path = shutil.which("docker-compose") or (DOCKER_COMPOSE if Path(DOCKER_COMPOSE).exists() else None)
    if path is None:
        pytest.fail("docker-compose is missing: `make system-deps` installs Debian's docker-compose")
    return path


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_docker_compose_config_accepts_the_file() -> None:
    r = subprocess.run(
        [compose_bin(), "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr


def test_the_whole_stack_is_there(spec: dict) -> None:
    missing = STACK - set(spec["services"])
    assert missing == set(), f"services missing from the stack: {sorted(missing)}"


def dockerfile_has_healthcheck(service: dict) -> bool:
    build = service.get("build")
    if not build:
        return False
    return "HEALTHCHECK " in (ROOT / build["dockerfile"]).read_text()


def test_long_running_services_have_healthchecks(spec: dict) -> None:
    for name, svc in spec["services"].items():
        if name in ONE_SHOT:
            continue
        # api-green runs the serving image, whose Dockerfile declares the healthcheck.
        image_check = dockerfile_has_healthcheck(svc) or "driftwood-serving" in svc.get("image", "")
        assert "healthcheck" in svc or image_check, f"{name} has no healthcheck"


def test_state_lives_in_named_volumes(spec: dict) -> None:
    for name in ("postgres", "minio", "prometheus", "alertmanager", "grafana"):
        mounts = spec["services"][name].get("volumes", [])
        named = [m for m in mounts if isinstance(m, str) and not m.startswith((".", "/")) and ":" in m]
        assert named, f"{name} keeps its data in no named volume"
        for m in named:
            assert m.split(":")[0] in spec["volumes"], f"{name}: volume {m} is not declared"


SECRETISH = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY$|CREDENTIALS|_CONN$|DB_URL)", re.I)


def test_secrets_are_files_never_environment_values(spec: dict) -> None:
    for name, svc in spec["services"].items():
        env = svc.get("environment", {})
        assert isinstance(env, dict), f"{name}: use a mapping for environment"
        for key, value in env.items():
            if SECRETISH.search(key):
                ok = key.endswith(("_FILE", "__FILE", "_CMD")) or str(value).startswith("/run/secrets/")
                assert ok, f"{name}: {key} looks like a secret given as a value; use a secret file"
        for secret in svc.get("secrets", []):
            source = secret["source"] if isinstance(secret, dict) else secret
            assert source in spec["secrets"], f"{name}: secret {source} is not declared"
    for secret, decl in spec["secrets"].items():
        assert decl["file"].startswith(SECRETS_DEFAULT), (
            f"secret {secret} must live in the git-ignored folder"
        )


def test_make_secrets_creates_every_secret_file_and_config_then_resolves(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    shutil.copy(ROOT / "docker" / "make-secrets.sh", tmp_path / "docker" / "make-secrets.sh")
    r = subprocess.run(["bash", str(tmp_path / "docker" / "make-secrets.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    spec = yaml.safe_load(COMPOSE.read_text())
    for secret, decl in spec["secrets"].items():
        f = tmp_path / ".driftwood" / "secrets" / decl["file"].removeprefix(SECRETS_DEFAULT)
        assert f.is_file() and f.stat().st_size > 0, (
            f"make-secrets.sh did not create {decl['file']} ({secret})"
        )
    assert oct((tmp_path / ".driftwood" / "secrets").stat().st_mode & 0o777) == "0o700"
    # Two runs give the same files: existing secrets are kept.
    before = {p.name: p.read_bytes() for p in (tmp_path / ".driftwood" / "secrets").iterdir()}
    subprocess.run(["bash", str(tmp_path / "docker" / "make-secrets.sh")], check=True, capture_output=True)
    after = {p.name: p.read_bytes() for p in (tmp_path / ".driftwood" / "secrets").iterdir()}
    assert before == after
    # Airflow's users file holds every user the compose stack declares; the drift sidecar's password
    # file matches its user's entry.
    users = json.loads(before["airflow_users.json"])
    declared = spec["x-airflow"]["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    assert set(users) == {u.split(":")[0] for u in declared.split(",")}
    assert users["driftwood-monitor"] == before["airflow_monitor_password"].decode()
    # The API's credentials file is accepted by the API's own parser and verifier (built serving code).
    check = (
        "import {parseCredentials, createVerifier} from './serving/dist/auth/credentials.js';"
        "const [file, pw] = process.argv.slice(1);"
        "const store = parseCredentials((await import('node:fs')).readFileSync(file, 'utf8'));"
        "const verify = createVerifier(store);"
        "const basic = (u, p) => 'Basic ' + Buffer.from(u + ':' + p).toString('base64');"
        "const ok = await verify(basic('smoke', pw)); const bad = await verify(basic('smoke', pw + 'x'));"
        "const roles = ok ? [...ok.roles].join('+') : 'rejected';"
        "console.log([...store.keys()].join(','), roles, bad ? 'accepted' : 'rejected');"
    )
    creds = tmp_path / ".driftwood" / "secrets" / "api_credentials"
    password = before["api_predict_password"].decode()
    r = subprocess.run(
        ["node", "--input-type=module", "-e", check, str(creds), password],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, (
        f"the API could not read the generated credentials (built with make build?): {r.stderr}"
    )
    assert r.stdout.split() == ["smoke,admin", "predict", "rejected"]
    # Random values differ from each other (no shared default password).
    randoms = [
        before[n] for n in ("postgres_password", "mlflow_db_password", "airflow_db_password", "pii.key")
    ]
    assert len(set(randoms)) == len(randoms)


def test_minimal_profile_is_self_contained(spec: dict) -> None:
    minimal = {n for n, s in spec["services"].items() if "minimal" in s.get("profiles", [])}
    assert minimal == MINIMAL
    for name in minimal:
        deps = set(spec["services"][name].get("depends_on", {}))
        assert deps <= minimal, f"{name} (minimal) depends on {sorted(deps - minimal)} outside the profile"
    full = {n for n, s in spec["services"].items() if "full" in s.get("profiles", [])}
    assert full == set(spec["services"]), "every service belongs to the full profile"


def test_bind_mounted_files_exist(spec: dict) -> None:
    mounted = 0
    for name, svc in spec["services"].items():
        for m in svc.get("volumes", []):
            if isinstance(m, str) and m.startswith("./"):
                src = m.split(":")[0]
                assert (ROOT / src).exists(), f"{name}: {src} does not exist"
                mounted += 1
    assert mounted >= 8


def test_the_sidecar_config_is_accepted_by_the_sidecar() -> None:
    """The compose stack's monitor.yaml, loaded by monitoring/evidently's own loader in its venv."""
    python = ROOT / ".venvs" / "evidently" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make install`")
    code = (
        "from monitoring.evidently.config import load_config; "
        "c = load_config('docker/evidently/monitor.yaml'); "
        "print(c.webhook.url, c.webhook.password_file)"
    )
    # As the stack sets them (x-driftwood-env): the config names the registry through them.
    env = {
        **os.environ,
        "DRIFTWOOD_HOME": "/var/lib/driftwood",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "PYTHONPATH": str(ROOT),
    }
    r = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["http://airflow-apiserver:8080", "/run/secrets/airflow_monitor_password"]
