"""Where this process spools uploads while it receives and runs them.

Each process spools into its own folder, ``DATA_DIR/spool/<instance>/``, and
holds a lock on it while it lives. At start a process deletes the folders whose
lock nobody holds: the spool of a process that was killed (kill -9, OOM), which
no other instance sharing the data dir is using. Uploads of live neighbours are
never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

LOCK_NAME = ".owner-lock"


class Spool:
    def __init__(self, root: Path, instance_id: str) -> None:
        self.root = root
        self.dir = root / instance_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock: IO[str] | None = (self.dir / LOCK_NAME).open("w")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._remove_dead_neighbours()

    def path(self, run_id: str) -> Path:
        return self.dir / f"{run_id}.upload"

    def _remove_dead_neighbours(self) -> None:
        for other in self.root.iterdir():
            if other == self.dir or not other.is_dir():
                continue
            try:
                with (other / LOCK_NAME).open("a") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    leftovers = [p.name for p in other.iterdir() if p.name != LOCK_NAME]
                    shutil.rmtree(other, ignore_errors=True)
            except BlockingIOError:
                continue  # a live process owns it
            except OSError:
                continue
            if leftovers:
                log.info("removed %d uploads left by a dead process: %s", len(leftovers), other)

    def close(self) -> None:
        if self._lock is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                self._lock.close()
            self._lock = None
