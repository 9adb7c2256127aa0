"""Keep the run store's health and upkeep current, in one background thread.

Every ``interval_s`` it checks the database and the blob store, then renews this
instance's leases, fails abandoned runs, applies retention and sweeps pending
blobs. Each change of health is reported through ``on_change(ok, reason)`` (the
server turns it into grpc.health SERVING / NOT_SERVING) and logged once, not at
every tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .run_store import RunStore, StoreUnavailable

log = logging.getLogger(__name__)


class StoreMonitor:
    def __init__(
        self,
        store: RunStore,
        interval_s: float,
        on_change: Callable[[bool, str], None],
    ) -> None:
        self._store = store
        self._interval = interval_s
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="run-store", daemon=True)
        self._migrated = False
        self.ok: bool | None = None
        self.reason = "not checked yet"

    def first_check(self) -> bool:
        """Open the store now (migrations included); True when it is usable.

        Upkeep waits for the thread's first round: start-up needs a usable store,
        not retention or sweeps done."""
        self._tick(upkeep=False)
        return bool(self.ok)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._tick()

    def _tick(self, upkeep: bool = True) -> None:
        try:
            if not self._migrated:
                revision = self._store.open()
                self._migrated = True
                log.info("run store ready at schema %s: %s", revision, self._store.describe())
            else:
                self._store.check()
            if upkeep:
                self._store.upkeep()
        except StoreUnavailable as exc:
            self._report(False, str(exc))
        except Exception as exc:  # an upkeep bug must not stop the thread
            log.exception("run store upkeep failed")
            self._report(False, f"run store upkeep failed: {type(exc).__name__}")
        else:
            self._report(True, "")

    def _report(self, ok: bool, reason: str) -> None:
        changed = ok != self.ok or (not ok and reason != self.reason)
        self.ok, self.reason = ok, reason
        if not changed:
            return
        if ok:
            log.info("run store available: serving")
        else:
            log.error("run store unavailable, not serving: %s", reason)
        self._on_change(ok, reason)
