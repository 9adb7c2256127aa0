"""Fixtures for envctl tests: the real checkout, and throwaway git repositories holding a
copy of environments/ (so writing commands commit there, never here)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from envctl.cli import main
from envctl.errors import EnvctlError, Problem
from envctl.load import parse_environment, read_text
from envctl.yamlio import dump, parse

REPO_ROOT = Path(__file__).resolve().parents[2]
# A Wednesday morning outside every freeze window in the committed files.
QUIET_TIME = "2026-06-10T10:00:00Z"


@dataclass
class CliResult:
    status: int
    out: str
    err: str


Cli = Callable[..., CliResult]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def env_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new git repository with environments/ copied from this checkout, committed."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "environments", repo / "environments")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "config", "user.name", "Release Bot")
    git(repo, "config", "user.email", "release-bot@example.org")
    git(repo, "config", "commit.gpgsign", "false")
    git(repo, "config", "core.hooksPath", ".git/hooks")  # only hooks a test installs
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "environments as in the checkout")
    monkeypatch.setenv("ENVCTL_NOW", QUIET_TIME)
    return repo


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run envctl in-process: cli("--repo", path, "validate") -> CliResult."""

    def run(*argv: str | Path) -> CliResult:
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            status = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(status, captured.out, captured.err)

    return run


# --- broken variants of the committed files, for rule tests -----------------------
# An edit is data, so parametrized cases can list it: ("put", "services.pipeline.http2",
# False), ("drop", "project"), ("rename", "services.pipeline", "Pipeline").
Edit = tuple[Any, ...]


def _at(doc: Any, path: str) -> tuple[Any, str | int]:
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = doc
    for part in parts[:-1]:
        node = node[part]
    return node, parts[-1]


def apply_edit(doc: Any, edit: Edit) -> None:
    kind, path, *rest = edit
    node, last = _at(doc, path)
    if kind == "put":
        node[last] = rest[0]
    elif kind == "drop":
        del node[last]
    elif kind == "rename":
        node.insert(list(node).index(last), rest[0], node.pop(last))
    else:
        raise ValueError(kind)


def edited_text(repo: Path, name: str, *edits: Edit) -> str:
    doc = parse(read_text(repo, name), name)
    for edit in edits:
        apply_edit(doc, edit)
    return dump(doc)


def problems_after(repo: Path, name: str, *edits: Edit) -> list[Problem]:
    """What envctl reports for environment ``name`` of ``repo`` after ``edits``."""
    try:
        parse_environment(repo, name, edited_text(repo, name, *edits))
    except EnvctlError as exc:
        return list(exc.problems)
    return []


@pytest.fixture
def broken() -> Callable[..., list[Problem]]:
    """broken(repo, "dev", ("put", "region", "x")) -> the problems reported."""
    return problems_after


@pytest.fixture
def edit_env() -> Callable[..., str]:
    """edit_env(repo, "dev", edit...) -> the edited file's text (not written)."""
    return edited_text


@pytest.fixture
def run_git() -> Callable[..., str]:
    """run_git(repo, "log", "--oneline") -> stdout."""
    return git
