"""Make sure a Docker engine answers before anything talks to it."""

from __future__ import annotations

import functools
import subprocess

from harness.tree import REPO_ROOT

ENSURE = REPO_ROOT / "tools" / "ensure-docker"


@functools.cache
def ensure_engine() -> None:
    """Run tools/ensure-docker once per process (it installs/starts dockerd if needed)."""
    done = subprocess.run([str(ENSURE)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or "tools/ensure-docker failed")
