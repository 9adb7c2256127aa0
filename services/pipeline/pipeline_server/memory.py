"""Memory per run: predicted from the feed, admitted against the instance's limit.

A run's peak memory follows from its feed's uncompressed size: continuous-gtfs
parses every .txt into a DataFrame, keeps the parsed input beside the transformed
output and serialises each table back to CSV to package it. ``MODEL`` states
that as ``per_byte × uncompressed + per_field × fields + the zip itself + fixed``, with figures
measured by ``python -m bench.pipeline_memory`` (README, "Memory").

``MemoryBudget`` admits a run only when its prediction fits what is left of the
instance's memory: the limit (the cgroup's, which is what Cloud Run and
``docker --memory`` enforce), less a reserve for the idle server, less what the
runs already in flight on this instance reserved. A run that could never fit is
refused as too large (the console's 413); one that fits an idle instance but not
now is refused as busy (429, try again). Both are RESOURCE_EXHAUSTED with the
figures, instead of an OOM kill that takes every run on the instance with it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MIB = 1024 * 1024
CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMINFO = Path("/proc/meminfo")
# cgroup v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages); anything
# this large is no limit.
_NO_LIMIT = 1 << 60


@dataclass(frozen=True)
class MemoryModel:
    """peak RSS a run adds ≈ per_byte × uncompressed + per_field × fields
    + compressed + fixed_bytes.

    ``fields``: commas and newlines of the feed's .txt entries (FeedSummary.fields).
    Bytes alone cannot predict it: 100 MiB of one-letter fields costs six times
    what 100 MiB of long fields does (a DataFrame holds a 16-byte view per value).
    ``compressed``: the zip is read into memory once, and on Cloud Run the spooled
    upload sits in the in-memory data folder.
    """

    per_byte: float
    per_field: float
    fixed_bytes: int

    def predict(self, uncompressed: int, fields: int, compressed: int) -> int:
        return (
            int(self.per_byte * uncompressed + self.per_field * fields)
            + compressed
            + self.fixed_bytes
        )

    def largest_feed(self, available: int) -> int:
        """The largest uncompressed size that could fit in ``available`` bytes (with
        no fields at all: a bound for stopping decompression, not an admission)."""
        return max(int((available - self.fixed_bytes) / self.per_byte), 0)

    def __str__(self) -> str:
        return (
            f"{self.per_byte:g} × uncompressed + {self.per_field:g} B per field"
            f" + the zip + {self.fixed_bytes // MIB} MiB"
        )


# Fitted to `python -m bench.pipeline_memory` on 2-core / 24 GiB machines (README,
# "Memory"; added RSS over a ~125 MiB idle server):
#   generated GTFS, 1M stop_times rows:  39.4 MiB,  5.3 M fields →  340 MiB
#   generated GTFS, 2M stop_times rows:  78.8 MiB, 10.6 M fields →  506 MiB
#   --padded 10 / 20 / 40 --shape wide: 100 / 200 / 400 MiB, 0.4-1.6 M fields
#                                        → 226 / 342 / 568 MiB (1.14 per byte)
#   --padded 10 / 20 --shape narrow:    100 / 200 MiB, 48.5 / 97 M fields
#                                        → 863 / 1635 MiB (~14 B per field)
#   --padded 10 / 40 (row 7's shape):   100 / 400 MiB, 11.9 / 47.4 M fields
#                                        → 310 / 905 MiB (~8 B per field)
# The steps' own work on real GTFS makes its fields dearer (~24 B) than padding's;
# the model takes the dearest of each term plus a margin, so it over-predicts every
# run measured (by 11-12 % on generated GTFS, up to 2x on the padding shapes).
MODEL = MemoryModel(per_byte=1.25, per_field=26.0, fixed_bytes=192 * MIB)


@dataclass(frozen=True)
class Limit:
    bytes: int
    source: str  # where the figure comes from, for messages and the start-up log


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":  # cgroup v2: no limit
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 < value < _NO_LIMIT else None


def _mem_total(meminfo: Path) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def detect_limit(configured: int = 0, cgroup: Path = CGROUP_ROOT, meminfo: Path = MEMINFO) -> Limit:
    """The memory this process may use.

    ``configured`` (PIPELINE_MEMORY_LIMIT_BYTES) wins when set; else the cgroup v2
    limit (``memory.max``), else the cgroup v1 limit (``memory/memory.limit_in_bytes``),
    else the machine's MemTotal (a Cloud Run gen2 instance is a VM of its memory
    size; a laptop has no limit but its RAM).
    """
    if configured > 0:
        return Limit(configured, "PIPELINE_MEMORY_LIMIT_BYTES")
    total = _mem_total(meminfo)
    for path, name in (
        (cgroup / "memory.max", "cgroup v2 memory.max"),
        (cgroup / "memory" / "memory.limit_in_bytes", "cgroup v1 memory.limit_in_bytes"),
    ):
        value = _read_limit(path)
        if value is not None and (total is None or value < total):
            return Limit(value, name)
    if total is not None:
        return Limit(total, "MemTotal (no cgroup limit)")
    return Limit(4096 * MIB, "assumed: no cgroup limit and no /proc/meminfo")


class MemoryExhausted(Exception):
    """No memory for this run; ``too_large``: not even on an idle instance."""

    def __init__(self, message: str, *, too_large: bool) -> None:
        super().__init__(message)
        self.too_large = too_large


def _mib(value: int) -> str:
    return f"{value / MIB:.0f} MiB"


class MemoryBudget:
    """Reservations of in-flight runs against the instance's memory."""

    def __init__(self, limit: Limit, reserve_bytes: int, model: MemoryModel = MODEL) -> None:
        self.limit = limit
        self.model = model
        self.usable = max(limit.bytes - reserve_bytes, 0)
        self._reserve = reserve_bytes
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        return self._held

    def largest_feed(self) -> int:
        """The largest uncompressed feed one run on an idle instance can take."""
        return self.model.largest_feed(self.usable)

    def describe(self) -> str:
        return (
            f"a run needs about {self.model}; runs may use {_mib(self.usable)} of this"
            f" instance's {_mib(self.limit.bytes)} ({self.limit.source},"
            f" less {_mib(self._reserve)} for the server)"
        )

    def admit(self, uncompressed: int, fields: int, compressed: int) -> int:
        """Reserve this run's predicted peak; returns it, for ``release``.

        Raises MemoryExhausted when it does not fit.
        """
        need = self.model.predict(uncompressed, fields, compressed)
        figure = (
            f"a run of this feed ({_mib(uncompressed)} uncompressed, {fields / 1e6:.1f} M"
            f" fields, {_mib(compressed)} zip) needs about {_mib(need)}"
        )
        if need > self.usable:
            raise MemoryExhausted(
                f"feed too large for this instance's memory: {figure}; {self.describe()}",
                too_large=True,
            )
        with self._lock:
            if self._held + need > self.usable:
                raise MemoryExhausted(
                    f"not enough memory free for this run now: {figure}, runs in progress"
                    f" hold {_mib(self._held)} of the {_mib(self.usable)} runs may use here;"
                    " try again when they finish",
                    too_large=False,
                )
            self._held += need
        return need

    def release(self, reserved: int) -> None:
        if reserved:
            with self._lock:
                self._held -= reserved


def budget(configured_limit: int, reserve_bytes: int) -> MemoryBudget:
    """The instance's budget, logged once at start-up."""
    found = MemoryBudget(detect_limit(configured_limit), reserve_bytes)
    log.info(
        "memory: %s from %s; a feed may uncompress to %s by default; %s",
        _mib(found.limit.bytes),
        found.limit.source,
        _mib(found.largest_feed()),
        found.describe(),
    )
    return found
