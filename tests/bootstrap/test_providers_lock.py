"""tools/providers-lock --check in a real git repository: it passes when every root's
committed lock file is what `tofu providers lock` writes, and fails, naming the file,
when one differs or is missing. OpenTofu cannot download providers here, so `tofu` is a
stand-in on PATH that writes, for `providers lock`, a lock file derived from the root's
pinned versions.tf and the platforms it was asked for (what the real one's content
depends on); the script, git and the files are real."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from . import tfeval

SCRIPT = tfeval.REPO / "tools" / "providers-lock"
FAKE_TOFU = """#!/usr/bin/env bash
set -euo pipefail
dir="${1#-chdir=}"; shift
case "$1" in
  init) mkdir -p "$dir/.terraform" ;;
  providers)
    shift 2
    { echo "# stand-in lock for $(sha256sum "$dir/versions.tf" | cut -c1-16)"; printf '%s\\n' "$@"; } > "$dir/.terraform.lock.hcl" ;;
esac
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "tools").mkdir(parents=True)
    shutil.copy(SCRIPT, root / "tools" / "providers-lock")
    listed = subprocess.run(
        [str(SCRIPT), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for folder in listed:
        (root / folder).mkdir(parents=True)
        shutil.copy(tfeval.REPO / folder / "versions.tf", root / folder / "versions.tf")
    (root / ".gitignore").write_text(".terraform/\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tofu").write_text(FAKE_TOFU)
    (bin_dir / "tofu").chmod(stat.S_IRWXU)
    _git(root, "init", "-q")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@example.org", "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "pins")
    return root


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{repo.parent / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run(
        [str(repo / "tools" / "providers-lock"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _commit_locks(repo: Path) -> None:
    assert _run(repo).returncode == 0
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "locks")


def test_missing_lock_files_fail_the_check(repo: Path) -> None:
    result = _run(repo, "--check")
    assert result.returncode == 1
    assert "modules/stack/.terraform.lock.hcl" in result.stderr
    assert "merge the PR providers-lock.yml opens" in result.stderr


def test_committed_lock_files_matching_the_pins_pass(repo: Path) -> None:
    _commit_locks(repo)
    result = _run(repo, "--check")
    assert result.returncode == 0, result.stderr
    lock = (repo / "bootstrap" / "gcp" / "prod" / ".terraform.lock.hcl").read_text()
    for platform in ("linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64", "windows_amd64"):
        assert f"-platform={platform}" in lock


def test_a_changed_pin_without_new_lock_files_fails(repo: Path) -> None:
    _commit_locks(repo)
    versions = repo / "modules" / "stack" / "versions.tf"
    versions.write_text(versions.read_text().replace('"6.50.0"', '"6.51.0"'))
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qam", "bump")
    result = _run(repo, "--check")
    assert result.returncode == 1
    assert "modules/stack/.terraform.lock.hcl" in result.stderr
    assert "bootstrap/github/.terraform.lock.hcl" not in result.stderr


def test_unknown_arguments_are_refused(repo: Path) -> None:
    result = _run(repo, "--frobnicate")
    assert result.returncode == 2
    assert "usage:" in result.stderr
