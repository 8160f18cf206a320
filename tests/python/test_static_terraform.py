"""Static checks of terraform/ (no cluster or cloud account here, so nothing is planned or applied):
every .tf and .tfvars file parses with a real HCL2 parser, checkov finds zero failed checks and
every skip carries a reason, the modules declare what the design needs, and the environments wire
every required module input and declare every tfvars value."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TF = ROOT / "terraform"
TOOLS = ROOT / ".venvs" / "tools" / "bin"
ENVIRONMENTS = ("staging", "production")

PARSE = """
import json, sys
import hcl2
out = {}
for path in sys.argv[1:]:
    with open(path) as f:
        try:
            out[path] = {"ok": hcl2.load(f)}
        except Exception as e:
            out[path] = {"error": f"{type(e).__name__}: {e}"}
print(json.dumps(out, default=str))
"""


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make install` (requirements/tools.lock provides it)")
    return str(path)


def hcl_files() -> list[Path]:
    return sorted(p for p in TF.rglob("*") if p.suffix in {".tf", ".tfvars"} and ".terraform" not in p.parts)


@pytest.fixture(scope="module")
def parsed() -> dict[str, dict]:
    files = hcl_files()
    assert len(files) >= 10, f"expected the modules and environments, found {len(files)} HCL files"
    r = subprocess.run([tool("python"), "-c", PARSE, *map(str, files)], capture_output=True, text=True)
    assert r.returncode == 0, (
        f"the HCL parser (bc-python-hcl2, from checkov, in .venvs/tools) did not run: {r.stderr}"
    )
    return {str(Path(k).relative_to(TF)): v for k, v in json.loads(r.stdout).items()}


def test_every_hcl_file_parses(parsed: dict[str, dict]) -> None:
    errors = {f: v["error"] for f, v in parsed.items() if "error" in v}
    assert errors == {}, f"HCL parse errors: {errors}"


def blocks(parsed: dict[str, dict], prefix: str, kind: str) -> dict[str, dict]:
    """All `kind` blocks (resource/variable/module/data) in files under prefix, by type or name."""
    out: dict[str, dict] = {}
    for f, v in parsed.items():
        if not f.startswith(prefix):
            continue
        for block in v.get("ok", {}).get(kind, []):
            for key, body in block.items():
                out.setdefault(key, {}).update(body if isinstance(body, dict) else {})
    return out


def test_k8s_module_declares_the_workload_and_its_guard_rails(parsed: dict[str, dict]) -> None:
    resources = blocks(parsed, "modules/k8s-app/", "resource")
    for kind in (
        "kubernetes_namespace_v1",
        "kubernetes_deployment_v1",
        "kubernetes_service_v1",
        "kubernetes_horizontal_pod_autoscaler_v2",
        "kubernetes_pod_disruption_budget_v1",
        "kubernetes_network_policy_v1",
        "kubernetes_service_account_v1",
        "kubernetes_role_v1",
        "kubernetes_role_binding_v1",
        "kubernetes_ingress_v1",
        "kubernetes_manifest",
    ):
        assert kind in resources, f"modules/k8s-app has no {kind}"
    text = (TF / "modules/k8s-app/main.tf").read_text()
    # Secrets come from AWS Secrets Manager through the External Secrets Operator.
    assert 'kind       = "ExternalSecret"' in text and 'service = "SecretsManager"' in text
    # No ClusterRole: RBAC stays inside the namespace; no wildcard verbs or resources.
    assert "cluster_role" not in text
    assert not re.search(r'(verbs|resources)\s*=\s*\[[^\]]*"\*"', text)
    # The deployment records the champion version it went out with.
    assert '"driftwood.io/model-version" = var.model_version' in text


def test_cloud_module_declares_bucket_database_secrets_and_iam(parsed: dict[str, dict]) -> None:
    resources = blocks(parsed, "modules/cloud/", "resource")
    for kind in (
        "aws_s3_bucket",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_public_access_block",
        "aws_db_instance",
        "aws_secretsmanager_secret",
        "aws_kms_key",
        "aws_iam_role",
        "aws_iam_role_policy",
    ):
        assert kind in resources, f"modules/cloud has no {kind}"
    text = (TF / "modules/cloud/main.tf").read_text()
    assert "storage_encrypted                     = true" in text
    assert "publicly_accessible                   = false" in text
    # No secret value is ever set by Terraform (it would land in the state file).
    assert "aws_secretsmanager_secret_version" not in text
    assert not re.search(r"\bpassword\s*=", text)


def _vars(parsed: dict[str, dict], prefix: str) -> dict[str, dict]:
    return blocks(parsed, prefix, "variable")


def test_every_variable_and_output_is_documented_and_typed(parsed: dict[str, dict]) -> None:
    for prefix in ("modules/k8s-app/", "modules/cloud/", *(f"environments/{e}/" for e in ENVIRONMENTS)):
        for name, body in _vars(parsed, prefix).items():
            assert body.get("description"), f"{prefix}{name}: variable without description"
            assert body.get("type"), f"{prefix}{name}: variable without type"
        for name, body in blocks(parsed, prefix, "output").items():
            assert body.get("description"), f"{prefix}{name}: output without description"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_wires_every_required_module_input(parsed: dict[str, dict], env: str) -> None:
    modules = blocks(parsed, f"environments/{env}/", "module")
    assert set(modules) == {"cloud", "app"}
    for call, module_dir in (("cloud", "cloud"), ("app", "k8s-app")):
        declared = _vars(parsed, f"modules/{module_dir}/")
        given = set(modules[call]) - {"source", "__start_line__", "__end_line__"}
        unknown = given - set(declared)
        assert unknown == set(), f"{env}: module {call} gets undeclared inputs {sorted(unknown)}"
        required = {n for n, b in declared.items() if "default" not in b}
        assert required <= given, f"{env}: module {call} misses required inputs {sorted(required - given)}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_tfvars_set_declared_variables_and_hold_no_secret(parsed: dict[str, dict], env: str) -> None:
    tfvars = parsed[f"environments/{env}/{env}.tfvars"]["ok"]
    declared = _vars(parsed, f"environments/{env}/")
    assert set(tfvars) <= set(declared), f"{env}.tfvars sets undeclared {sorted(set(tfvars) - set(declared))}"
    required = {n for n, b in declared.items() if "default" not in b}
    assert required <= set(tfvars), f"{env}.tfvars misses {sorted(required - set(tfvars))}"
    for name in tfvars:
        assert not re.search(r"password|secret|token|private_key", name, re.I), f"{env}.tfvars sets {name}"


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_COLORS": "1"}
    r = subprocess.run(
        [
            tool("checkov"),
            "-d",
            str(TF),
            "--framework",
            "terraform",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert r.stdout.strip(), f"checkov printed no report (exit {r.returncode}): {r.stderr[-2000:]}"
    report = json.loads(r.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_finds_zero_failed_checks(checkov_report: dict) -> None:
    results = checkov_report["results"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']})"
        for c in results["failed_checks"]
    ]
    assert failed == [], "checkov failed checks:\n" + "\n".join(failed)
    # The scan covered the Kubernetes workload and the cloud resources, not an empty folder.
    ids = {c["check_id"] for c in results["passed_checks"]}
    assert {"CKV_K8S_43", "CKV_K8S_28", "CKV_AWS_16"} <= ids, (
        "expected image-digest, capability and RDS checks"
    )


def test_every_checkov_skip_is_justified_inline(checkov_report: dict) -> None:
    for c in checkov_report["results"]["skipped_checks"]:
        reason = (c.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.strip()) >= 20, f"{c['check_id']} on {c['resource']} is skipped without a reason"
    for tf in TF.rglob("*.tf"):
        for line in tf.read_text().splitlines():
            m = re.search(r"#checkov:skip=([A-Z0-9_]+)(:(.*))?", line)
            if m:
                assert m.group(3) and len(m.group(3).strip()) >= 20, f"{tf}: skip {m.group(1)} has no reason"
