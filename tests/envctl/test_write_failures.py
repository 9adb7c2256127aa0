"""Writing commands that cannot finish (issue 17, row 13): an immutable file, a read-only
or full disk, a git killed mid-commit and the index.lock it leaves. Each gives one line on
stderr and exit 1 (never the internal-error 70), and leaves the file, the index and
``git status`` exactly as they were. Real git, a real tmpfs (needs root; skipped, with the
reason, where the kernel refuses the mount)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Cli = Callable[..., Any]  # the `cli` fixture (conftest.py)

NEW = "5d1a7c3e9b2f4a6c8e0d1f3a5c7e9b2d4f6a8c0e"
DIGEST = "sha256:" + "a1" * 32
SET_IMAGE = ("set-image", "dev", "pipeline", "--commit", NEW, "--digest", DIGEST)
PAGE = 4096
REPO_ROOT = Path(__file__).resolve().parents[2]
QUIET_TIME = "2026-06-10T10:00:00Z"  # outside every freeze window (as in conftest.py)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def _state(repo: Path) -> tuple[str, str, str, dict[str, bytes]]:
    """What a failed write must leave as it was: status, the index, HEAD, every file."""
    files = {p.name: p.read_bytes() for p in sorted((repo / "environments").iterdir())}
    return (
        git(repo, "status", "--porcelain", "--untracked-files=all"),
        git(repo, "diff", "--cached"),
        git(repo, "rev-parse", "HEAD"),
        files,
    )


def _one_line(result: Any) -> str:
    assert result.status == 1, (result.status, result.err)
    assert "internal error" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, lines
    return str(lines[0])


def _make_repo(repo: Path) -> Path:
    shutil.copytree(REPO_ROOT / "environments", repo / "environments")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "config", "user.name", "Release Bot")
    git(repo, "config", "user.email", "release-bot@example.org")
    git(repo, "config", "commit.gpgsign", "false")
    git(repo, "config", "core.hooksPath", ".git/hooks")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "environments as in the checkout")
    (repo / "notes.txt").write_text("an untracked file, which envctl leaves alone\n")
    return repo


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 2 MiB tmpfs of our own, holding a fresh repository."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    monkeypatch.setenv("ENVCTL_NOW", QUIET_TIME)
    try:
        yield _make_repo(mount / "repo")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, free_pages: int) -> Path:
    """Fill ``mount`` until ENOSPC, then give back ``free_pages`` pages."""
    filler = mount / "filler"
    with filler.open("wb") as handle:
        for chunk in (1 << 20, PAGE):
            while True:
                try:
                    handle.write(b"\0" * chunk)
                    handle.flush()
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        size = (handle.tell() // PAGE) * PAGE
    os.truncate(filler, max(0, size - free_pages * PAGE))
    return filler


def test_an_immutable_file_is_reported_in_one_line(env_repo: Path, cli: Cli) -> None:
    dev = env_repo / "environments" / "dev.yaml"
    done = subprocess.run(["chattr", "+i", str(dev)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is refused here ({done.stderr.strip()})")
    try:
        before = _state(env_repo)
        line = _one_line(cli("--repo", env_repo, *SET_IMAGE))
        assert line.startswith("environments/dev.yaml: cannot write (Operation not permitted)")
        assert _state(env_repo) == before
        assert not list((env_repo / "environments").glob(".dev.yaml.*"))
    finally:
        subprocess.run(["chattr", "-i", str(dev)], check=True)


def test_a_read_only_file_system_is_reported_in_one_line(disk: Path, cli: Cli) -> None:
    before = _state(disk)
    subprocess.run(["mount", "-o", "remount,ro", str(disk.parent)], check=True)
    try:
        line = _one_line(cli("--repo", disk, *SET_IMAGE))
        assert line.startswith("environments/dev.yaml: cannot write (Read-only file system)")
        assert _state(disk) == before
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk.parent)], check=True)


def test_a_full_disk_at_every_point_of_a_write_leaves_nothing_behind(disk: Path, cli: Cli) -> None:
    """Give set-image 0, 1, 2, ... free pages: each attempt fails cleanly until one fits."""
    start = git(disk, "rev-parse", "HEAD").strip()
    before = _state(disk)
    failures: list[str] = []
    for free in range(64):
        filler = _fill(disk.parent, free)
        result = cli("--repo", disk, *SET_IMAGE)
        filler.unlink()
        if result.status == 0:
            assert git(disk, "status", "--porcelain", "--untracked-files=all") == before[0]
            assert git(disk, "diff", "--cached") == ""
            assert git(disk, "log", "-1", "--format=%s").startswith("dev: set pipeline")
            break
        failures.append(_one_line(result))
        assert _state(disk) == before, (free, failures[-1])
        assert not list((disk / "environments").glob(".dev.yaml.*"))
    else:
        pytest.fail(f"set-image never fitted: {failures[-1]}")
    assert git(disk, "rev-parse", "HEAD~1").strip() == start
    # Both places a full disk bites were hit: writing the file, and git writing objects.
    assert any(f.startswith("environments/dev.yaml: cannot write (No space") for f in failures)
    assert any(f.startswith("git commit failed: ") for f in failures), failures


def test_a_git_killed_mid_commit_then_its_stale_index_lock(
    env_repo: Path, cli: Cli, run_git: Callable[..., str]
) -> None:
    hook = env_repo / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\nkill -9 $PPID\nsleep 1\n")  # SIGKILL to the git commit
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    before = _state(env_repo)
    line = _one_line(cli("--repo", env_repo, *SET_IMAGE))
    assert line.startswith("git commit failed: killed by signal 9"), line
    assert _state(env_repo) == before
    lock = env_repo / ".git" / "index.lock"
    assert lock.exists()  # what a killed git leaves

    hook.unlink()
    line = _one_line(cli("--repo", env_repo, *SET_IMAGE))
    assert line == (
        ".git/index.lock: exists: another git command is running here, or one was killed "
        "and left it; if no git is running, delete .git/index.lock and run envctl again "
        "(nothing was changed)"
    )
    assert lock.exists()  # never deleted: a live git may hold it
    assert _state(env_repo) == before
    assert cli("--repo", env_repo, "validate", "dev").status == 0  # reading still works

    lock.unlink()
    result = cli("--repo", env_repo, *SET_IMAGE)
    assert result.status == 0, result.err
    assert run_git(env_repo, "status", "--porcelain") == ""
