"""The step pods as the Kubernetes runner submits them (the operator's own pod request, no cluster):
every step meets Pod Security Admission `restricted`, which the Terraform namespace enforces, runs in
the namespace Terraform creates, and references only secret keys the ExternalSecret provides."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import driftwood_steps
import pytest
from kubernetes.client import ApiClient

ROOT = Path(__file__).resolve().parents[2]
K8S_APP = ROOT / "terraform" / "modules" / "k8s-app" / "main.tf"
ENVIRONMENTS = ROOT / "terraform" / "environments"
TASKS_DOCKERFILE = ROOT / "docker" / "tasks.Dockerfile"

STEPS = {
    **{f"churn.{k}": s for k, s in driftwood_steps.dataset_steps("churn").items()},
    **{f"btc.{k}": s for k, s in driftwood_steps.dataset_steps("btc", driftwood_steps.INTERVAL_END).items()},
}
# PSA `restricted`: the only volume types allowed.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SECCOMP_ALLOWED = {"RuntimeDefault", "Localhost"}


# ---- what Terraform declares ------------------------------------------------------------------------


def _block(text: str, header: str) -> str:
    """The body of the first `header {...}` block (braces balanced; the .tf has none in strings)."""
    start = text.index(header)
    depth = 0
    for i in range(text.index("{", start), len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start : i + 1]
    raise AssertionError(f"unbalanced block {header!r}")


def terraform_namespaces() -> dict[str, str]:
    """Environment → namespace, from the module's `namespace` local and the environments' calls."""
    template = re.search(r'^\s*namespace\s*=\s*"([^"]+)"', K8S_APP.read_text(), re.M)
    assert template and "${var.environment}" in template.group(1), "k8s-app: no namespace local"
    out: dict[str, str] = {}
    for main in sorted(ENVIRONMENTS.glob("*/main.tf")):
        app = _block(main.read_text(), 'module "app"')
        env = re.search(r'^\s*environment\s*=\s*"([^"]+)"', app, re.M)
        assert env, f"{main}: module app has no environment"
        out[env.group(1)] = template.group(1).replace("${var.environment}", env.group(1))
    assert out, "no environment under terraform/environments"
    return out


def external_secret_keys() -> dict[str, set[str]]:
    """Secret name → the keys its ExternalSecret syncs."""
    block = _block(K8S_APP.read_text(), 'resource "kubernetes_manifest" "external_secret"')
    for_each = _block(block, "for_each")
    target = re.search(r'target\s*=\s*\{\s*name\s*=\s*"([^"]+)"', block)
    assert target and "${each.key}" in target.group(1), "ExternalSecret: target name not per workload"
    keys = {
        target.group(1).replace("${each.key}", workload): set(re.findall(r'"([^"]+)"', values))
        for workload, values in re.findall(r"^\s*(\w+)\s*=\s*\[([^\]]*)\]", for_each, re.M)
    }
    assert keys, "ExternalSecret: no workload keys parsed"
    return keys


def test_terraform_namespace_enforces_restricted() -> None:
    ns = _block(K8S_APP.read_text(), 'resource "kubernetes_namespace_v1" "this"')
    assert re.search(r'"pod-security\.kubernetes\.io/enforce"\s*=\s*"restricted"', ns)


# ---- what the runner submits ------------------------------------------------------------------------


@pytest.fixture
def k8s_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "DRIFTWOOD_K8S_NAMESPACE",
        "DRIFTWOOD_ENV",
        "DRIFTWOOD_K8S_SECRET",
        "DRIFTWOOD_K8S_SERVICE_ACCOUNT",
    ):
        monkeypatch.delenv(name, raising=False)
    # Worker-side paths that must not leak into the pod (the pod's filesystem differs).
    monkeypatch.setenv("DRIFTWOOD_HOME", "/opt/airflow/driftwood")
    monkeypatch.setenv("DRIFTWOOD_PII_KEY_FILE", "/run/secrets/pii_key")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://driftwood-mlflow:5000")
    return monkeypatch


def pod_body(step: driftwood_steps.Step) -> dict[str, Any]:
    """The pod request as the API server would receive it (camelCase JSON)."""
    task = driftwood_steps.step_task(step, runner="kubernetes")
    return ApiClient().sanitize_for_serialization(task.build_pod_request_obj(dry_run=True))


def containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(kind) or []


def psa_restricted_violations(pod: dict[str, Any]) -> list[str]:
    """The Pod Security Standards `restricted` checks (baseline included) that apply to a pod spec."""
    spec = pod["spec"]
    psc = spec.get("securityContext") or {}
    bad: list[str] = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            bad.append(f"spec.{field} is true")
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            bad.append(f"volume {vol['name']}: type {sorted(kinds - RESTRICTED_VOLUMES)} not allowed")
    if psc.get("runAsUser") == 0:
        bad.append("pod runAsUser is 0")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_ALLOWED:
        bad.append(f"pod seccompProfile {pod_seccomp}")
    if psc.get("sysctls"):
        bad.append("pod sets sysctls")
    for c in containers(spec):
        where = f"container {c['name']}"
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            bad.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{where}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad.append(f"{where}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            bad.append(f"{where}: adds capabilities {caps['add']}")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            bad.append(f"{where}: runAsNonRoot is not true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            bad.append(f"{where}: runs as user 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in SECCOMP_ALLOWED:
            bad.append(f"{where}: seccompProfile {seccomp} (RuntimeDefault or Localhost required)")
        if sc.get("procMount") not in (None, "Default"):
            bad.append(f"{where}: procMount {sc['procMount']}")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            bad.append(f"{where}: hostPort")
    return bad


def test_the_psa_checks_catch_a_non_compliant_pod() -> None:
    pod = {
        "spec": {
            "hostNetwork": True,
            "volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}],
            "containers": [{"name": "base", "securityContext": {"privileged": True}}],
        }
    }
    bad = " | ".join(psa_restricted_violations(pod))
    for expected in ("hostNetwork", "hostPath", "privileged", "allowPrivilegeEscalation", "drop ALL"):
        assert expected in bad
    assert "runAsNonRoot" in bad and "seccompProfile None" in bad


@pytest.mark.parametrize("name", STEPS)
def test_step_pod_meets_psa_restricted(k8s_env: pytest.MonkeyPatch, name: str) -> None:
    pod = pod_body(STEPS[name])
    assert psa_restricted_violations(pod) == []
    spec = pod["spec"]
    # The image's user (USER uid:gid in the Dockerfile), numeric so the kubelet can verify non-root.
    user = re.search(r"^USER\s+(\d+):(\d+)\s*$", TASKS_DOCKERFILE.read_text(), re.M)
    assert user, "docker/tasks.Dockerfile: no numeric USER uid:gid"
    uid, gid = int(user.group(1)), int(user.group(2))
    for c in containers(spec):
        sc, psc = c.get("securityContext") or {}, spec.get("securityContext") or {}
        assert sc.get("runAsUser", psc.get("runAsUser")) == uid, c["name"]
        assert sc.get("runAsGroup", psc.get("runAsGroup")) == gid, c["name"]


@pytest.mark.parametrize("name", STEPS)
def test_step_pod_can_write_its_home_and_temp(k8s_env: pytest.MonkeyPatch, name: str) -> None:
    pod = pod_body(STEPS[name])
    image_home = re.search(r"DRIFTWOOD_HOME=(\S+)", TASKS_DOCKERFILE.read_text())
    assert image_home, "docker/tasks.Dockerfile sets no DRIFTWOOD_HOME"
    for c in pod["spec"]["containers"]:
        env = {e["name"]: e for e in c.get("env") or []}
        # The worker's own paths stay on the worker.
        assert "DRIFTWOOD_PII_KEY_FILE" not in env
        home = env.get("DRIFTWOOD_HOME", {}).get("value", image_home.group(1))
        if (c.get("securityContext") or {}).get("readOnlyRootFilesystem"):
            writable = {m["mountPath"] for m in c.get("volumeMounts") or [] if not m.get("readOnly")}
            assert {home, "/tmp"} <= writable, f"{c['name']}: read-only root, writable only {writable}"


@pytest.mark.parametrize(
    ("env", "override"), [(None, None), ("staging", None), ("production", None), (None, "custom")]
)
def test_step_pod_namespace_follows_terraform(
    k8s_env: pytest.MonkeyPatch, env: str | None, override: str | None
) -> None:
    namespaces = terraform_namespaces()
    if env:
        k8s_env.setenv("DRIFTWOOD_ENV", env)
    if override:
        k8s_env.setenv("DRIFTWOOD_K8S_NAMESPACE", override)
    expected = override or namespaces[env or "production"]
    for name, step in STEPS.items():
        assert pod_body(step)["metadata"]["namespace"] == expected, name


def test_an_unknown_environment_is_refused(k8s_env: pytest.MonkeyPatch) -> None:
    k8s_env.setenv("DRIFTWOOD_ENV", "dev")
    with pytest.raises(ValueError, match="DRIFTWOOD_ENV: expected one of staging, production"):
        driftwood_steps.step_task(STEPS["churn.train"], runner="kubernetes")


@pytest.mark.parametrize("name", STEPS)
def test_every_secret_key_the_pod_reads_is_synced(k8s_env: pytest.MonkeyPatch, name: str) -> None:
    declared = external_secret_keys()
    spec = pod_body(STEPS[name])["spec"]
    # The service account Terraform creates (IRSA role, RBAC for its own secret only).
    account = spec["serviceAccountName"]
    pattern = rf'"kubernetes_service_account_v1" "\w+" {{\s*metadata {{\s*name\s*=\s*"{re.escape(account)}"'
    assert re.search(pattern, K8S_APP.read_text()), f"k8s-app creates no service account {account}"
    refs: set[tuple[str, str]] = set()
    for c in containers(spec):
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"]))
        for src in c.get("envFrom") or []:
            ref = src.get("secretRef")
            assert not ref or ref["name"] in declared, f"envFrom secret {ref} is not synced"
    for vol in spec.get("volumes") or []:
        secret = vol.get("secret")
        if secret:
            assert secret["secretName"] in declared, f"volume secret {secret['secretName']} is not synced"
            refs |= {(secret["secretName"], item["key"]) for item in secret.get("items") or []}
    assert {key for _, key in refs} >= set(driftwood_steps.SECRET_ENV.values())
    missing = sorted(f"{s}/{k}" for s, k in refs if k not in declared.get(s, set()))
    assert missing == [], f"keys the pod reads but no ExternalSecret provides: {missing}"
