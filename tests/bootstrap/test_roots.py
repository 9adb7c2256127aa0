"""bootstrap's shape: each GCP root belongs to one environment file and keeps its state in
that environment's bucket; applied roots pin their providers exactly (the versions
tools/provider_schema.py checks) and are all locked by tools/providers-lock, modules keep
ranges; each registry is readable by exactly the environments promoted from it; every
module call passes exactly the declared inputs; variables and outputs are described."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from envctl import hcl, tftypes
from testkit.scripts import load_tool

from . import tfeval

REPO = tfeval.REPO
MODULE_DIRS = sorted(p for p in (tfeval.BOOTSTRAP / "modules").iterdir() if p.is_dir())
ROOTS = [*tfeval.GCP_ROOTS, tfeval.GITHUB_ROOT]
CALLERS = ROOTS + MODULE_DIRS
META = {"source", "version", "for_each", "count", "depends_on", "providers"}


def _environment(name: str) -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load((REPO / "environments" / f"{name}.yaml").read_text())
    return data


def test_one_gcp_root_per_cloud_environment() -> None:
    cloud = sorted(
        p.stem
        for p in (REPO / "environments").glob("*.yaml")
        if _environment(p.stem).get("platform") == "cloudrun"
    )
    assert sorted(p.name for p in tfeval.GCP_ROOTS) == cloud


@pytest.mark.parametrize("root", tfeval.GCP_ROOTS, ids=lambda p: p.name)
def test_a_gcp_root_reads_its_own_environment_file(root: Path) -> None:
    scope = tfeval.root_scope(root)
    assert tfeval.resolve(tfeval.modules(root)["project"]["environment"], scope) == root.name
    assert (
        tfeval.resolve(tfeval.modules(root)["project"]["project_id"], scope)
        == _environment(root.name)["project"]
    )


def _applied_roots() -> list[str]:
    found = []
    for tf in sorted([*REPO.glob("modules/**/*.tf"), *REPO.glob("bootstrap/**/*.tf")]):
        for block in hcl.load_tf(tf).get("terraform", []):
            if "backend" in block:
                found.append(str(tf.parent.relative_to(REPO)))
    return sorted(set(found))


def test_every_applied_root_is_locked_by_the_lock_script() -> None:
    listed = subprocess.run(
        [str(REPO / "tools" / "providers-lock"), "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(listed) == _applied_roots()
    assert "modules/stack" in listed


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_roots_pin_the_providers_the_schema_check_reads(root: Path) -> None:
    provider_schema = load_tool("provider_schema.py")
    pins = tfeval.required_providers(root)
    checked = {v.split()[0]: v.split()[1] for v in provider_schema.GENERATED_FROM.values()}
    assert pins
    for name, pin in pins.items():
        assert pin["source"] in checked, f"{root.name}: {name} has no checked schema"
        assert pin["version"] == checked[pin["source"]], (
            f"{root.name}: {name} is not pinned to the checked version"
        )


@pytest.mark.parametrize("module", MODULE_DIRS, ids=lambda p: p.name)
def test_modules_keep_ranges(module: Path) -> None:
    (terraform,) = hcl.load_tf(module / "versions.tf")["terraform"]
    for pin in hcl.unquote(terraform.get("required_providers", [{}])[0]).values():
        assert re.fullmatch(r">= ?\d+(\.\d+)*, ?< ?\d+(\.\d+)*", pin["version"]), pin


@pytest.mark.parametrize("root", tfeval.GCP_ROOTS, ids=lambda p: p.name)
def test_each_registry_is_read_by_the_environments_promoted_from_it(root: Path) -> None:
    promoted_from_here = {
        p.stem
        for p in (REPO / "environments").glob("*.yaml")
        if (_environment(p.stem).get("promotion") or {}).get("from") == root.name  # type: ignore[union-attr]
    }
    readers = hcl.unquote(tfeval.modules(root)["project"].get("registry_readers", {}))
    assert set(readers) == promoted_from_here
    for env, member in readers.items():
        # Each reader is that environment's deploy identity, read from its own root's state.
        assert member == f"data.terraform_remote_state.{env}.outputs.deploy_member"


def test_builds_land_where_build_yml_pushes() -> None:
    build = yaml.safe_load((REPO / ".github" / "workflows" / "build.yml").read_text())
    target = build["env"]["TARGET_ENV"]
    for root in tfeval.GCP_ROOTS:
        given = "build_service_account_email" in tfeval.modules(root)["project"]
        assert given == (root.name == target), root.name


@pytest.mark.parametrize("caller", CALLERS, ids=lambda p: str(p.relative_to(REPO)))
def test_module_calls_pass_exactly_the_declared_inputs(caller: Path) -> None:
    for label, body in tfeval.modules(caller).items():
        target = (caller / str(hcl.unquote(body["source"]))).resolve()
        declared = {v.name: v for v in hcl.variables(target)}
        given = {k for k in body if k not in META and not k.startswith("__")}
        assert not given - declared.keys(), (
            f"{caller.name}: module {label} passes undeclared {given - declared.keys()}"
        )
        missing = {n for n, v in declared.items() if v.required} - given
        assert not missing, f"{caller.name}: module {label} misses {missing}"


@pytest.mark.parametrize("directory", MODULE_DIRS + ROOTS, ids=lambda p: str(p.relative_to(REPO)))
def test_variables_and_outputs_are_typed_and_described(directory: Path) -> None:
    for var in hcl.variables(directory):
        assert var.description.strip(), f"{directory.name}.{var.name} has no description"
        assert var.type != "any", f"{directory.name}.{var.name} has no type"
        tftypes.parse_type(var.type)
    for out in hcl.outputs(directory):
        assert len(out.description) > 10, f"{directory.name} output {out.name} is not described"


@pytest.mark.parametrize("module", MODULE_DIRS, ids=lambda p: p.name)
def test_modules_have_the_standard_files(module: Path) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (module / name).is_file(), f"bootstrap/modules/{module.name}/{name} missing"


def test_module_readmes_are_generated_and_up_to_date() -> None:
    from envctl import docs

    stale = docs.stale_readmes(tfeval.BOOTSTRAP / "modules")
    assert not stale, f"run `python -m envctl.docs bootstrap/modules`: {[str(p) for p in stale]}"
