"""`tofu fmt -check` (or `terraform fmt -check`) over modules/ and bootstrap/, when a binary
is on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = [ROOT / "modules", ROOT / "bootstrap"]


def test_modules_are_formatted() -> None:
    binary = shutil.which("tofu") or shutil.which("terraform")
    if binary is None:
        pytest.skip("neither tofu nor terraform is on PATH")
    # An empty CLI config: no plugin cache or credentials of this machine are read.
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1"}
    result = subprocess.run(
        [binary, "fmt", "-check", "-recursive", "-diff", *map(str, FOLDERS)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"{binary} fmt -check failed:\n{result.stdout}{result.stderr}"
