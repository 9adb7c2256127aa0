"""Project-wide pytest hooks: the `docker` and `browser` markers.

Tests marked `docker` need a Docker engine, `browser` need Debian's Chromium.
`make test` provides both (tools/ensure-docker, tools/ensure-chromium). When
one is missing anyway, its tests are skipped with the reason — except on CI
(CI=true), where nothing may be skipped: the tests run and fail loudly.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest


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
