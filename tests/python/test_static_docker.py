"""Static checks of the images (no Docker engine runs here): hadolint on every Dockerfile, the
image rules (multi-stage, base pinned by digest, non-root, healthcheck, OCI labels), every COPY
source present in the build context, no secret reachable by the build context, and the Python
images' lock files installable as pinned."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".venvs" / "tools" / "bin"
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
# hadolint covers every Dockerfile in the repository, including ones kept next to their component.
COMPONENTS = {"tasks", "serving", "airflow", "evidently", "mlflow"}
SKIP_DIRS = {"node_modules", ".venvs", ".git", ".driftwood"}
ALL_DOCKERFILES = sorted(
    {
        *DOCKERFILES,
        *(p for d in ROOT.iterdir() if d.is_dir() and d.name not in SKIP_DIRS for p in d.rglob("Dockerfile")),
    }
)


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make install` (requirements/tools.lock provides {name})")
    return str(path)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    ins = instructions(dockerfile)
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def test_one_dockerfile_per_component() -> None:
    assert {p.name.removesuffix(".Dockerfile") for p in DOCKERFILES} == COMPONENTS


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    # --failure-threshold style: even a style finding fails the test.
    r = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "style", str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, f"hadolint {dockerfile.name}:\n{r.stdout}{r.stderr}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_rules(dockerfile: Path) -> None:
    ins = instructions(dockerfile)
    froms = [args for word, args in ins if word == "FROM"]
    assert len(froms) >= 2, f"{dockerfile.name}: expected a multi-stage build"
    # Every base is a build ARG whose default is pinned by digest (or a digest written in FROM).
    args = dict(
        a.split("=", 1)
        for word, a in ins
        if word == "ARG" and "=" in a and a.split("=", 1)[0].endswith("_IMAGE")
    )
    for base in froms:
        ref = base.split()[0]
        name = ref.removeprefix("${").removesuffix("}")
        pinned = args.get(name, ref)
        assert re.search(r"@sha256:[0-9a-f]{64}$", pinned), (
            f"{dockerfile.name}: base '{ref}' not pinned by digest"
        )
    last = final_stage(dockerfile)
    users = [a for w, a in last if w == "USER"]
    assert users, f"{dockerfile.name}: the final stage must switch to a non-root USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and uid != "0", f"{dockerfile.name}: USER must be a numeric non-root uid, got {uid}"
    assert any(w == "HEALTHCHECK" and a != "NONE" for w, a in last), f"{dockerfile.name}: no HEALTHCHECK"
    labels = " ".join(a for w, a in last if w == "LABEL")
    for label in ("org.opencontainers.image.source", "org.opencontainers.image.revision"):
        assert label in labels, f"{dockerfile.name}: missing label {label}"


# ---- the build context (.dockerignore) ------------------------------------------------------------


def ignore_patterns() -> list[tuple[bool, str]]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    pats = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    return [(p.startswith("!"), p.removeprefix("!")) for p in pats]


def _matches(path: str, pattern: str) -> bool:
    candidates = [pattern]
    if pattern.startswith("**/"):
        candidates.append(pattern[3:])
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(pre, c) for c in candidates for pre in prefixes) or any(
        fnmatch.fnmatchcase(path, c.replace("**/", "*/")) for c in candidates
    )


def in_context(path: str) -> bool:
    """Whether a repository path reaches the build context, as Docker reads .dockerignore:
    the last matching pattern wins, `!` re-includes, a matching folder excludes its content."""
    included = True
    for negated, pattern in ignore_patterns():
        if _matches(path, pattern):
            included = negated
    return included


def context_files() -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        rel_dir = "" if rel_dir == "." else rel_dir
        # Folders excluded as a whole are not walked (node_modules, .venvs, .driftwood, .git).
        dirnames[:] = [d for d in dirnames if in_context(f"{rel_dir}/{d}".lstrip("/"))]
        out += [Path(dirpath, f) for f in filenames if in_context(f"{rel_dir}/{f}".lstrip("/"))]
    return out


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "serving/.env.production",
        ".driftwood/secrets/pii.key",
        ".driftwood/warehouse.db",
        "docker/secrets/postgres_password",
        "deploy/tls.key",
        "deploy/server.pem",
        "terraform/environments/production/terraform.tfstate",
        "terraform/environments/production/.terraform/providers/x",
        "node_modules/fastify/package.json",
        ".venvs/tools/bin/python",
        ".git/config",
    ],
)
def test_secret_and_state_paths_never_reach_the_build_context(path: str) -> None:
    assert not in_context(path), f"{path} would be sent to the Docker build context"


def test_a_seeded_secret_file_is_not_in_the_build_context() -> None:
    secret = "seeded-" + os.urandom(12).hex()
    seeded = ROOT / ".driftwood" / "secrets" / "static-test-probe.key"
    seeded.parent.mkdir(parents=True, exist_ok=True)
    seeded.write_text(secret)
    try:
        files = context_files()
        assert ROOT / "tasks" / "src" / "cli.ts" in files  # the walk covers real sources
        for f in files:
            if f.stat().st_size < 5_000_000:
                assert secret.encode() not in f.read_bytes(), f"{f} holds the seeded secret"
        assert seeded not in files
    finally:
        seeded.unlink()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copy_source_exists_in_the_build_context(dockerfile: Path) -> None:
    for word, args in instructions(dockerfile):
        if word != "COPY" or "--from=" in args:
            continue
        parts = [a for a in args.split() if not a.startswith("--")]
        for src in parts[:-1]:
            path = ROOT / src
            assert path.exists(), f"{dockerfile.name}: COPY source {src} does not exist"
            assert in_context(src.rstrip("/")), (
                f"{dockerfile.name}: COPY source {src} is excluded by .dockerignore"
            )


@pytest.mark.parametrize("component", ["tasks", "serving"])
def test_node_images_run_the_built_cli(component: str) -> None:
    text = (ROOT / "docker" / f"{component}.Dockerfile").read_text()
    assert '"node", "/app/tasks/dist/cli.js"' in text
    # The compiled entry comes from tasks/src/cli.ts; the runtime copies tasks/dist from the build stage.
    assert (ROOT / "tasks" / "src" / "cli.ts").exists()
    assert "COPY --from=build --chown=root:root /src/tasks/dist/ tasks/dist/" in text
    assert "npx tsc -b tasks serving" in text
    cli = (ROOT / "tasks" / "src" / "cli.ts").read_text()
    for command in ("serve", "ingest", "train", "promote", "forget"):
        assert re.search(rf"^  {command}: \{{", cli, re.M), f"the CLI has no '{command}' command"


def lock_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


@pytest.mark.parametrize("name", ["airflow", "mlflow"])
def test_image_locks_agree_with_the_tested_locks(name: str) -> None:
    image, tested = (
        lock_pins(ROOT / "docker/requirements" / f"{name}.lock"),
        lock_pins(ROOT / "requirements" / f"{name}.lock"),
    )
    assert image, f"docker/requirements/{name}.lock pins nothing"
    differ = {p: (image[p], tested[p]) for p in image.keys() & tested.keys() if image[p] != tested[p]}
    assert differ == {}, f"the {name} image would run other versions than the tests: {differ}"
    assert f"{name}" in (ROOT / "docker" / f"{name}.Dockerfile").read_text()


@pytest.mark.parametrize(
    "lock",
    ["docker/requirements/airflow.lock", "docker/requirements/mlflow.lock", "requirements/evidently.lock"],
)
def test_python_image_locks_resolve_as_pinned(lock: str, tmp_path: Path) -> None:
    """The images' `pip install -r <lock>` step, resolved (not installed) by uv against the index."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH: `make install` installs it")
    subprocess.run([uv, "venv", "-q", "--python", "3.11", str(tmp_path / "venv")], check=True)
    r = subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--dry-run",
            "--python",
            str(tmp_path / "venv" / "bin" / "python"),
            "-r",
            str(ROOT / lock),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, f"{lock} does not resolve:\n{r.stderr[-2000:]}"
    assert "Would install" in r.stderr + r.stdout
