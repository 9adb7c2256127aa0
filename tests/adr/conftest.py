"""Fixtures for the ADR tests: the tool as a module, and a disposable copy of the repo's
ADRs whose relative links still resolve."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from testkit.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "adr.py"


def load_tool() -> ModuleType:
    """tools/adr.py as a module (tools/ is not a package)."""
    return load_script(TOOL, "tools_adr")


@pytest.fixture(scope="session")
def adr() -> ModuleType:
    return load_tool()


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A temporary repository root: docs/ copied (so it can be broken), every other top-level
    entry symlinked to the real one (so links from the ADRs into the repo still resolve)."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(REPO / "docs", root / "docs")
    for entry in REPO.iterdir():
        if entry.name in {"docs", ".git", ".venv"}:
            continue
        (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return root


@pytest.fixture
def adr_dir(repo_copy: Path) -> Path:
    return repo_copy / "docs" / "adr"


@pytest.fixture
def problems(adr: ModuleType, adr_dir: Path, repo_copy: Path) -> Callable[[], list[str]]:
    """Run the check on the copy; each problem rendered as 'file:line: message'."""

    def run() -> list[str]:
        return [f"{p.path.name}:{p.line}: {p.message}" for p in adr.check(adr_dir, repo_copy)]

    return run
