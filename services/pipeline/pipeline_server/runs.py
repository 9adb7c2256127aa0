"""Run history and outputs of one instance.

History lives in memory and is bounded (oldest finished runs dropped); outputs
live on local disk under a total byte budget (oldest evicted, the run keeps its
record with `output_available = False`). Nothing survives a restart: on Cloud
Run each instance has its own history, which is what the README says.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.v1 import pipeline_pb2 as pb

log = logging.getLogger(__name__)


class RunNotFound(KeyError):
    pass


class TooManyRuns(RuntimeError):
    pass


class BadPageToken(ValueError):
    pass


@dataclass
class _Entry:
    seq: int
    run: pb.Run
    output_path: Path | None = None
    output_bytes: int = 0


@dataclass
class RunStore:
    output_dir: Path
    max_history: int
    max_output_bytes: int
    max_concurrent: int
    _entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: int = 0
    _active: int = 0
    _output_total: int = 0

    def __post_init__(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        # Leftovers of a previous process are not ours to serve.
        for stale in self.output_dir.glob("*.zip"):
            stale.unlink(missing_ok=True)

    # --- concurrency ------------------------------------------------------

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the `max_concurrent` run slots, or raise TooManyRuns."""
        with self._lock:
            if self._active >= self.max_concurrent:
                raise TooManyRuns(
                    f"{self._active} runs already in progress on this instance "
                    f"(limit {self.max_concurrent}); retry later"
                )
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1

    @property
    def active(self) -> int:
        return self._active

    # --- records ----------------------------------------------------------

    @staticmethod
    def new_run_id() -> str:
        return uuid.uuid4().hex

    def upload_path(self, run_id: str) -> Path:
        return self.output_dir / f"{run_id}.upload"

    def add(self, run: pb.Run) -> None:
        with self._lock:
            self._seq += 1
            self._entries[run.run_id] = _Entry(seq=self._seq, run=run)
            self._trim_history()

    def update(self, run: pb.Run, output: bytes | None = None) -> None:
        """Replace a run's record; store its output when given."""
        with self._lock:
            entry = self._entries.get(run.run_id)
            if entry is None:  # trimmed while running: keep the newest record anyway
                self._seq += 1
                entry = _Entry(seq=self._seq, run=run)
                self._entries[run.run_id] = entry
            entry.run = run
            if output is not None:
                path = self.output_dir / f"{run.run_id}.zip"
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(output)
                tmp.replace(path)
                entry.output_path, entry.output_bytes = path, len(output)
                self._output_total += len(output)
                entry.run.output_available = True
                self._evict_outputs(keep=run.run_id)
            self._trim_history()

    def get(self, run_id: str) -> pb.Run:
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None:
                raise RunNotFound(run_id)
            copy = pb.Run()
            copy.CopyFrom(entry.run)
            return copy

    def output_path(self, run_id: str) -> Path | None:
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is None:
                raise RunNotFound(run_id)
            return entry.output_path

    def last_finished(self) -> pb.Run | None:
        with self._lock:
            finished = [e for e in self._entries.values() if e.run.HasField("finished_at")]
            if not finished:
                return None
            return max(finished, key=lambda e: e.run.finished_at.ToNanoseconds()).run

    def page(self, page_size: int, token: str) -> tuple[list[pb.Run], str]:
        """Newest first. The token carries the sequence number to continue
        below, so runs added between pages never shift or repeat a page."""
        before = _decode_token(token) if token else None
        with self._lock:
            newest_first = sorted(self._entries.values(), key=lambda e: e.seq, reverse=True)
            if before is not None:
                newest_first = [e for e in newest_first if e.seq < before]
            chosen = newest_first[:page_size]
            more = len(newest_first) > page_size
            runs = []
            for e in chosen:
                copy = pb.Run()
                copy.CopyFrom(e.run)
                runs.append(copy)
        next_token = _encode_token(chosen[-1].seq) if more and chosen else ""
        return runs, next_token

    # --- bounds -----------------------------------------------------------

    def _trim_history(self) -> None:
        finished = [
            rid for rid, e in self._entries.items() if e.run.status != pb.RUN_STATUS_RUNNING
        ]
        while len(self._entries) > self.max_history and finished:
            rid = finished.pop(0)
            entry = self._entries.pop(rid)
            self._drop_output(entry)

    def _evict_outputs(self, keep: str) -> None:
        for rid, entry in self._entries.items():
            if self._output_total <= self.max_output_bytes:
                break
            if rid != keep and entry.output_path is not None:
                log.info("evicting output of run %s (%d bytes)", rid, entry.output_bytes)
                self._drop_output(entry)

    def _drop_output(self, entry: _Entry) -> None:
        if entry.output_path is not None:
            entry.output_path.unlink(missing_ok=True)
            self._output_total -= entry.output_bytes
            entry.output_path, entry.output_bytes = None, 0
            entry.run.output_available = False


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        prefix, _, seq = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix != "v1":
            raise ValueError(prefix)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadPageToken(f"page_token {token!r} is not a token this service issued") from None
