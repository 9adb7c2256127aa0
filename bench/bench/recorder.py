"""Per-call latencies at microsecond resolution, kept by each Locust process.

The locustfile's gRPC interceptor (and its request listener, for the console's
HTTP calls) hands every finished call to one `Recorder` per process:

- per method, a `Histogram` of the latencies of *successful* calls that started
  inside the measurement window, and the count of failures by status code
  (failures are often instant rejections; mixing them in would flatter p50);
- a timeline: per method and per second since the test started, a histogram
  of every call (warm-up included), for the latency/throughput-over-time chart.

The window starts `warmup_s` after the test starts, so connection set-up,
first-call caches and the spawn ramp stay out of the percentiles. At test stop
the locustfile dumps the recorder to `<dir>/hist-<host>-<pid>.json`; the
runner merges every process's file with `merge`. Nothing here imports Locust
or gevent, so the runner and the tests use it in plain processes.
"""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.histogram import Histogram

SCHEMA = 1


@dataclass
class MethodStats:
    """What one process saw of one method (a gRPC method name or an HTTP path)."""

    kind: str  # "grpc" or "http"
    histogram: Histogram = field(default_factory=Histogram)
    errors: Counter[str] = field(default_factory=Counter)
    # Calls that started before the window opened: counted, never measured.
    warmup_calls: int = 0

    @property
    def calls(self) -> int:
        return self.histogram.count + sum(self.errors.values())

    def merge(self, other: MethodStats) -> None:
        self.histogram.merge(other.histogram)
        self.errors.update(other.errors)
        self.warmup_calls += other.warmup_calls


@dataclass
class Second:
    """One second of one method on the timeline."""

    histogram: Histogram = field(default_factory=Histogram)
    errors: int = 0


class Recorder:
    def __init__(self) -> None:
        self.test_start: float | None = None
        self.window_start: float | None = None
        self.window_end: float | None = None
        self.methods: dict[str, MethodStats] = {}
        # method → second since test_start → Second
        self.timeline: dict[str, dict[int, Second]] = {}

    def start(self, now: float, warmup_s: float = 0.0) -> None:
        """A test starts at `now` (epoch seconds): forget earlier calls."""
        self.test_start = now
        self.window_start = now + max(0.0, warmup_s)
        self.window_end = None
        self.methods.clear()
        self.timeline.clear()

    def stop(self, now: float) -> None:
        self.window_end = now

    def record(
        self, name: str, kind: str, started: float, elapsed_us: int, error: str | None = None
    ) -> None:
        """One finished call: `started` in epoch seconds, `error` its status code or None."""
        if self.test_start is None:
            # Used outside a Locust test (a plain script): the window is everything.
            self.start(started)
        assert self.test_start is not None
        assert self.window_start is not None
        stats = self.methods.get(name)
        if stats is None:
            stats = self.methods[name] = MethodStats(kind)
        second = int(started + elapsed_us / 1e6 - self.test_start)
        slot = self.timeline.setdefault(name, {}).setdefault(max(0, second), Second())
        if error is None:
            slot.histogram.record(elapsed_us)
        else:
            slot.errors += 1
        if started < self.window_start:
            stats.warmup_calls += 1
        elif error is None:
            stats.histogram.record(elapsed_us)
        else:
            stats.errors[error] += 1

    def totals(self) -> tuple[int, int]:
        """(calls, failed calls) so far, warm-up included: for progress lines."""
        calls = sum(s.calls + s.warmup_calls for s in self.methods.values())
        errors = sum(slot.errors for seconds in self.timeline.values() for slot in seconds.values())
        return calls, errors

    def write_progress(self, directory: Path) -> None:
        """A tiny file the runner polls while the test runs (one per process)."""
        directory.mkdir(parents=True, exist_ok=True)
        calls, errors = self.totals()
        path = directory / f"progress-{socket.gethostname()}-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"calls": calls, "errors": errors}))
        tmp.replace(path)

    @property
    def empty(self) -> bool:
        return not self.methods

    @property
    def window_seconds(self) -> float:
        if self.window_start is None or self.window_end is None:
            return 0.0
        return max(0.0, self.window_end - self.window_start)

    # --- files -------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "test_start": self.test_start,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "methods": {
                name: {
                    "kind": s.kind,
                    "histogram": s.histogram.to_json(),
                    "errors": dict(s.errors),
                    "warmup_calls": s.warmup_calls,
                }
                for name, s in sorted(self.methods.items())
            },
            "timeline": {
                name: [
                    [sec, slot.errors, slot.histogram.to_json()]
                    for sec, slot in sorted(seconds.items())
                ]
                for name, seconds in sorted(self.timeline.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recorder:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"recorder file schema {data.get('schema')!r}, expected {SCHEMA}")
        r = cls()
        r.test_start = data["test_start"]
        r.window_start = data["window_start"]
        r.window_end = data["window_end"]
        for name, m in data["methods"].items():
            r.methods[name] = MethodStats(
                m["kind"],
                Histogram.from_json(m["histogram"]),
                Counter({str(k): int(v) for k, v in m["errors"].items()}),
                int(m["warmup_calls"]),
            )
        for name, rows in data["timeline"].items():
            r.timeline[name] = {
                int(sec): Second(Histogram.from_json(h), int(errors)) for sec, errors, h in rows
            }
        return r

    def dump(self, directory: Path) -> Path:
        """Write this process's file (atomically: the runner may be polling the folder)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"hist-{socket.gethostname()}-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")))
        tmp.replace(path)
        return path


def merge(recorders: Iterable[Recorder]) -> Recorder:
    """One recorder from several processes' (Locust workers) of the same test.

    Timelines are aligned on the earliest test start; the window is the
    intersection of the processes' windows, since each measured only its own.
    """
    parts = [r for r in recorders if r.test_start is not None]
    out = Recorder()
    if not parts:
        return out
    out.test_start = min(r.test_start for r in parts if r.test_start is not None)
    out.window_start = max(r.window_start for r in parts if r.window_start is not None)
    ends = [r.window_end for r in parts if r.window_end is not None]
    out.window_end = min(ends) if ends else None
    for r in parts:
        assert r.test_start is not None
        shift = round(r.test_start - out.test_start)
        for name, stats in r.methods.items():
            out.methods.setdefault(name, MethodStats(stats.kind)).merge(stats)
        for name, seconds in r.timeline.items():
            target = out.timeline.setdefault(name, {})
            for sec, slot in seconds.items():
                into = target.setdefault(sec + shift, Second())
                into.histogram.merge(slot.histogram)
                into.errors += slot.errors
    return out


def load_dir(directory: Path) -> Recorder:
    """Merge every `hist-*.json` a test's processes dumped into `directory`."""
    files = sorted(directory.glob("hist-*.json"))
    if not files:
        raise FileNotFoundError(f"no hist-*.json in {directory}: did the Locust test run?")
    return merge(Recorder.from_json(json.loads(f.read_text())) for f in files)
