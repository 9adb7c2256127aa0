"""The uv workspace: one lock that matches every pyproject, components that
declare what they import, and dependencies that point one way."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from harness import wheelhouse

REPO = Path(__file__).resolve().parents[1]
UV = str(Path(sys.executable).with_name("uv"))
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))

# Component (uv package) → the import package(s) it ships.
COMPONENTS = {
    "pipeline-proto": ["services/proto/gen/pipeline"],
    "service-telemetry": ["services/telemetry/telemetry"],
    "pipeline-server": ["services/pipeline/pipeline_server"],
    "console-server": ["services/console/console_server"],
    "envctl": ["envctl/envctl"],
    "harness": ["harness/harness"],
    "bench": ["bench/bench"],
    "testkit": ["testkit/testkit"],
}


def test_every_member_is_listed_and_each_has_its_own_pyproject() -> None:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "project" not in root, "the root is a virtual workspace: no package of its own"
    members = root["tool"]["uv"]["workspace"]["members"]
    names = {
        tomllib.loads((REPO / m / "pyproject.toml").read_text())["project"]["name"] for m in members
    }
    assert names == set(COMPONENTS)


def test_the_lock_matches_every_pyproject() -> None:
    # --locked: fail instead of rewriting uv.lock when a pyproject changed without `uv lock`.
    done = subprocess.run(
        [UV, "lock", "--locked", "--offline"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def _imports(package_dir: Path) -> set[str]:
    found: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names)


def _locked_closure(component: str) -> set[str]:
    """Every distribution (normalised) the lock installs with `component`."""
    pins, folders = wheelhouse.locked(component)
    names = {tomllib.loads((f / "pyproject.toml").read_text())["project"]["name"] for f in folders}
    return {canonicalize_name(n) for n in (*pins, *names)}


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_each_component_gets_what_it_imports_from_its_own_dependencies(component: str) -> None:
    # The development venv holds everything, so a missing dependency would only
    # show in an image (or a fresh install of that one component).
    providers = dict(packages_distributions())
    # Editable installs of the members record no top-level names; say them here.
    providers.update({Path(p).name: [c] for c, pkgs in COMPONENTS.items() for p in pkgs})
    own = {Path(p).name for p in COMPONENTS[component]}
    closure = _locked_closure(component)
    missing = {}
    for package in COMPONENTS[component]:
        for name in _imports(REPO / package) - own:
            dists = {canonicalize_name(d) for d in providers.get(name, [])}
            if not dists & closure:
                missing[name] = sorted(dists)
    assert not missing, f"{component} imports packages its pyproject does not bring: {missing}"


def test_dependencies_point_one_way() -> None:
    done = subprocess.run([LINT_IMPORTS], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    # The same contract kind as the real one, on a tiny tree: envctl importing the
    # harness (even lazily, inside a function) breaks it.
    (tmp_path / "envctl").mkdir()
    (tmp_path / "harness").mkdir()
    (tmp_path / "envctl" / "__init__.py").write_text("")
    (tmp_path / "harness" / "__init__.py").write_text("")
    (tmp_path / "envctl" / "cli.py").write_text("def up():\n    from harness import local\n")
    (tmp_path / "harness" / "local.py").write_text("")
    config = tmp_path / "contracts.toml"
    config.write_text(
        textwrap.dedent(
            """
            [tool.importlinter]
            root_packages = ["envctl", "harness"]
            [[tool.importlinter.contracts]]
            name = "envctl never imports the harness"
            type = "forbidden"
            source_modules = ["envctl"]
            forbidden_modules = ["harness"]
            """
        )
    )
    done = subprocess.run(
        [LINT_IMPORTS, "--config", str(config), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "envctl.cli -> harness.local" in done.stdout


def test_each_service_gets_only_its_own_dependencies_from_the_lock() -> None:
    pipeline = wheelhouse.pins("pipeline")
    console = wheelhouse.pins("console")
    assert {"continuous-gtfs", "polars", "grpcio-reflection"} <= set(pipeline)
    assert not {"fastapi", "uvicorn", "starlette"} & set(pipeline)
    assert {"fastapi", "uvicorn"} <= set(console)
    assert not {"continuous-gtfs", "polars", "pyarrow"} & set(console)
    # envctl's, the harness's and the dev tools' dependencies ship in neither image.
    tooling = {"ruamel-yaml", "jsonschema", "testcontainers", "pytest", "locust", "uv"}
    assert not tooling & (set(pipeline) | set(console))


def test_each_image_gets_only_its_own_workspace_members() -> None:
    rel = {
        s: [str(p.relative_to(REPO)) for p in wheelhouse.members(s)]
        for s in ("pipeline", "console")
    }
    assert rel["pipeline"] == ["services/pipeline", "services/proto", "services/telemetry"]
    assert rel["console"] == ["services/console", "services/proto", "services/telemetry"]


def test_the_exported_requirements_carry_hashes() -> None:
    exported = wheelhouse.export("pipeline")
    pins = [line for line in exported.splitlines() if "==" in line]
    assert pins
    assert all(line.rstrip().endswith("\\") for line in pins), "every pin is followed by hashes"
    assert exported.count("--hash=sha256:") >= len(pins)
