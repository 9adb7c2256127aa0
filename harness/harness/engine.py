"""Make sure a Docker engine answers before anything talks to it."""

from __future__ import annotations

import functools
import subprocess

from harness.locks import file_lock
from harness.tree import REPO_ROOT

ENSURE = REPO_ROOT / "tools" / "ensure-docker"


@functools.cache
def ensure_engine() -> None:
    """Run tools/ensure-docker once per process (it installs/starts dockerd if needed)."""
    # Parallel test workers must not install or start two engines at once.
    with file_lock(REPO_ROOT / ".cache" / "locks" / "engine.lock"):
        done = subprocess.run([str(ENSURE)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or "tools/ensure-docker failed")
