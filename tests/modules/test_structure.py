"""Every module: the standard files, parseable HCL, typed and described variables,
validations where values are constrained, described outputs, provider bounds both ways,
generated README tables, and examples that call the module with the right inputs."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from envctl import docs, hcl, tftypes

MODULES = Path(__file__).resolve().parents[2] / "modules"
NAMES = [
    "artifact-registry",
    "service-identity",
    "cloud-run-service",
    "invoker-iam",
    "secret-access",
    "cloud-sql-postgres",
    "storage-bucket",
    "monitoring",
    "stack",
]
ALL_TF = sorted(MODULES.rglob("*.tf"))
# Variables whose values are constrained, so each must carry a validation block.
CONSTRAINED = {
    "artifact-registry": {"location", "repository_id", "kms_key_name"},
    "service-identity": {"account_id", "project_roles"},
    "cloud-run-service": {
        "name",
        "image",
        "commit",
        "ingress",
        "container_port",
        "scaling",
        "resources",
        "concurrency",
        "timeout_seconds",
        "startup_probe",
        "liveness_probe",
        "secret_env",
        "vpc_egress",
        "traffic",
    },
    "invoker-iam": {"members"},
    "secret-access": {"secret_ids", "member"},
    "cloud-sql-postgres": {
        "region",
        "name",
        "database_version",
        "network",
        "database",
        "tier",
        "availability",
        "disk_gb",
        "backups",
        "maintenance_window",
        "service_account_email",
    },
    "storage-bucket": {"name", "location", "lifecycle_days", "soft_delete_days", "member"},
    "monitoring": {"project_id", "environment", "services", "monitoring", "alert_duration_seconds"},
    "stack": {"environment", "project_id", "region", "services"},
}
META_ARGUMENTS = {"source", "version", "for_each", "count", "depends_on", "providers"}


def test_the_modules_are_the_expected_ones() -> None:
    assert sorted(p.name for p in MODULES.iterdir() if p.is_dir()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_module_has_the_standard_files(name: str) -> None:
    for file in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (MODULES / name / file).is_file(), f"modules/{name}/{file} missing"


@pytest.mark.parametrize("path", ALL_TF, ids=[str(p.relative_to(MODULES)) for p in ALL_TF])
def test_every_tf_file_parses(path: Path) -> None:
    assert isinstance(hcl.load_tf(path), dict)


@pytest.mark.parametrize("name", NAMES)
def test_variables_are_typed_described_and_validated(name: str) -> None:
    variables = hcl.variables(MODULES / name)
    assert variables
    for var in variables:
        assert var.description.strip(), f"{name}.{var.name} has no description"
        tftypes.parse_type(var.type)  # a real type constraint, not "any" by omission
        assert var.type != "any", f"{name}.{var.name} has no type"
    validated = {v.name for v in variables if v.has_validation}
    assert CONSTRAINED[name] <= validated, f"missing validation: {CONSTRAINED[name] - validated}"


@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_described(name: str) -> None:
    outputs = hcl.outputs(MODULES / name)
    assert outputs
    for out in outputs:
        assert len(out.description) > 10, f"{name} output {out.name} is not described"


@pytest.mark.parametrize("name", [n for n in NAMES if n != "stack"])
def test_versions_bound_opentofu_and_the_provider_both_ways(name: str) -> None:
    (terraform,) = hcl.load_tf(MODULES / name / "versions.tf")["terraform"]
    assert hcl.unquote(terraform["required_version"]) == ">= 1.6"
    (providers,) = terraform["required_providers"]
    google = hcl.unquote(providers["google"])
    assert google["source"] == "hashicorp/google"
    assert re.fullmatch(r">= ?\d+(\.\d+)*, ?< ?\d+(\.\d+)*", google["version"]), google["version"]


def test_the_stack_pins_the_provider_it_is_checked_against(provider_schema: ModuleType) -> None:
    """The root that is applied pins exactly (a provider release between a PR's plan and
    its merge must not change the applied plan), and the pin is the version whose schema
    tools/provider_schema.py checks."""
    (terraform,) = hcl.load_tf(MODULES / "stack" / "versions.tf")["terraform"]
    assert hcl.unquote(terraform["required_version"]) == ">= 1.7"  # removed blocks
    (providers,) = terraform["required_providers"]
    google = hcl.unquote(providers["google"])
    checked = provider_schema.GENERATED_FROM["provider-google"]  # "hashicorp/google 6.50.0"
    assert f"{google['source']} {google['version']}" == checked


def test_stack_keeps_one_state_per_environment_in_gcs() -> None:
    (terraform,) = hcl.load_tf(MODULES / "stack" / "versions.tf")["terraform"]
    (backend,) = terraform["backend"]
    assert set(hcl.unquote(backend)) == {"gcs"}  # bucket/prefix come from envctl render --backend


def test_readmes_are_generated_and_up_to_date() -> None:
    stale = docs.stale_readmes(MODULES)
    assert not stale, f"run `python -m envctl.docs`: {[str(p) for p in stale]}"


@pytest.mark.parametrize("name", NAMES)
def test_readme_has_usage_tables_and_example(name: str) -> None:
    text = (MODULES / name / "README.md").read_text()
    assert "## Usage" in text
    assert "```hcl" in text or "```sh" in text
    assert "## Inputs" in text
    assert "## Outputs" in text
    assert "xample" in text


def _module_calls(tf: Path) -> list[tuple[str, dict[str, Any]]]:
    calls = []
    for block in hcl.load_tf(tf).get("module", []):
        for label, body in block.items():
            calls.append((str(hcl.unquote(label)), body))
    return calls


CALLERS = sorted([*MODULES.glob("*/examples/*/main.tf"), MODULES / "stack" / "main.tf"])


@pytest.mark.parametrize("tf", CALLERS, ids=[str(p.relative_to(MODULES)) for p in CALLERS])
def test_module_calls_pass_exactly_the_declared_inputs(tf: Path) -> None:
    calls = _module_calls(tf)
    assert calls
    for label, body in calls:
        target = (tf.parent / str(hcl.unquote(body["source"]))).resolve()
        assert (target / "variables.tf").is_file(), f"{label}: source {target} is not a module"
        declared = {v.name: v for v in hcl.variables(target)}
        given = {k for k in body if k not in META_ARGUMENTS and not k.startswith("__")}
        unknown = given - declared.keys()
        missing = {n for n, v in declared.items() if v.required} - given
        assert not unknown, f"module {label} passes undeclared inputs {unknown}"
        assert not missing, f"module {label} misses required inputs {missing}"


@pytest.mark.parametrize("name", [n for n in NAMES if n != "stack"])
def test_every_module_has_an_example(name: str) -> None:
    assert (MODULES / name / "examples" / "basic" / "main.tf").is_file()


def test_images_are_owned_by_the_stack_never_ignored_or_tagged() -> None:
    for tf in ALL_TF:
        text = tf.read_text()
        assert not re.search(r"^\s*ignore_changes\s*=", text, re.M), f"{tf}: files own what runs"
        assert ":latest" not in text, tf
