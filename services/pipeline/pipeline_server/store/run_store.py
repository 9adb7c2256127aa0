"""The run store the servicer uses: runs in a database, zips in a blob store.

Every instance of the pipeline shares one store, so a run started on one is
seen by all (GetRun, ListRuns, DownloadOutput). The rules that keep it honest
with many instances and with crashes:

- A zip is written before any row refers to it, under a ``pending_blobs`` row;
  the transaction that refers to it deletes that row. A run is COMPLETED only in
  the transaction that also names its output zip. So no completed run lacks its
  zip and no zip is left that nothing knows of (the sweep deletes pending blobs
  no run refers to).
- A RUNNING run carries a lease its instance renews every third of the lease
  time. When the instance dies the lease runs out and any instance marks the run
  FAILED with the reason. An instance that finds its own run already failed (its
  lease ran out while the database was away) does not resurrect it.
- Retention deletes a finished run's rows and queues its zips as pending in one
  transaction, then deletes the zips: never a row pointing at a missing zip.

Run slots stay per instance (a run uses this instance's CPU and memory);
``active_everywhere()`` counts live runs of all instances.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.v1 import pipeline_pb2 as pb

from . import records
from .blobs import BlobMissing, BlobStore, BlobStoreUnavailable
from .database import describe, migrate
from .schema import pending_blobs, runs, step_results

log = logging.getLogger(__name__)

# A pending blob with no run row yet may be an input still uploading: leave it this long.
UNCLAIMED_BLOB_GRACE_S = 3600
RETENTION_BATCH = 500


class RunNotFound(KeyError):
    pass


class TooManyRuns(RuntimeError):
    pass


class BadPageToken(ValueError):
    pass


class OutputMissing(LookupError):
    """The run has no output zip (any more)."""


class StoreUnavailable(RuntimeError):
    """The database or the blob store cannot be used now; the message says which and why."""


@dataclass(frozen=True)
class Retention:
    days: int = 0  # 0: no age limit
    runs: int = 0  # 0: no count limit


def input_key(run_id: str) -> str:
    return f"{run_id}/input.zip"


def output_key(run_id: str) -> str:
    return f"{run_id}/output.zip"


def _reason(exc: BaseException) -> str:
    """One line saying why, never a driver's whole traceback text."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


@contextlib.contextmanager
def _database_errors(doing: str) -> Iterator[None]:
    """Any database failure inside becomes StoreUnavailable("database unavailable<doing>: …").

    OSError too: pg8000's connect timeout (a server that accepts and never answers)
    is a bare TimeoutError that SQLAlchemy does not wrap."""
    try:
        yield
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise StoreUnavailable(f"database unavailable{doing}: {_reason(exc)}") from exc


class RunStore:
    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        *,
        max_concurrent: int,
        lease_s: float,
        retention: Retention,
        instance_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine, self.blobs = engine, blobs
        self.max_concurrent = max_concurrent
        self.lease_us = int(lease_s * 1_000_000)
        self.retention = retention
        self.instance_id = instance_id or f"{uuid.uuid4().hex[:12]}"
        self._clock = clock
        self._lock = threading.Lock()
        self._active = 0
        self._leased: set[str] = set()  # runs this instance is executing (leases renewed)
        self._unrecorded: dict[str, str] = {}  # run id -> why its outcome is not recorded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def describe(self) -> str:
        return f"runs in {describe(self.engine.url)}, zips in {self.blobs.describe()}"

    def _now_us(self) -> int:
        return int(self._clock() * 1_000_000)

    @contextlib.contextmanager
    def _db(self, doing: str) -> Iterator[sa.Connection]:
        """A transaction; any database failure becomes StoreUnavailable saying ``doing``."""
        with _database_errors(f" while {doing}"), self.engine.begin() as connection:
            yield connection

    # --- start-up and health -------------------------------------------------

    def open(self) -> str:
        """Migrate the schema and check the blob store; raise StoreUnavailable if either fails."""
        with _database_errors(""):  # OSError here: also SQLite's lock file
            revision = migrate(self.engine)
        self.check()
        return revision

    def check(self) -> None:
        with _database_errors(""), self.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        try:
            self.blobs.check()
        except BlobStoreUnavailable as exc:
            raise StoreUnavailable(f"blob store unavailable: {exc}") from exc

    # --- run slots (per instance) --------------------------------------------

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of this instance's ``max_concurrent`` run slots, or raise TooManyRuns."""
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

    def active_everywhere(self) -> int:
        with self._db("counting active runs") as db:
            return int(
                db.execute(
                    sa.select(sa.func.count())
                    .select_from(runs)
                    .where(runs.c.status == records.RUNNING)
                    .where(runs.c.lease_expires_us > self._now_us())
                ).scalar_one()
            )

    # --- writing runs ----------------------------------------------------------

    @staticmethod
    def new_run_id() -> str:
        return uuid.uuid4().hex

    def start(self, run: pb.Run, upload: Path) -> None:
        """Store the input zip, then the RUNNING run under this instance's lease."""
        key = input_key(run.run_id)
        self._pend(key, run.run_id)
        try:
            self.blobs.put_file(key, upload)
        except BlobStoreUnavailable as exc:
            raise StoreUnavailable(f"blob store unavailable: {exc}") from exc
        with self._db("recording the run") as db:
            db.execute(
                runs.insert().values(
                    **records.run_row(run),
                    input_key=key,
                    owner=self.instance_id,
                    lease_expires_us=self._now_us() + self.lease_us,
                )
            )
            db.execute(pending_blobs.delete().where(pending_blobs.c.key == key))
        with self._lock:
            self._leased.add(run.run_id)

    def finish(self, run: pb.Run, output: bytes | None) -> pb.Run:
        """Record the outcome; returns the stored run.

        The output zip goes first; if it cannot be stored the run is recorded as
        failed with that reason. If the database cannot be written, StoreUnavailable
        is raised and the run is remembered: upkeep records it FAILED with that
        reason as soon as the database is back (it keeps its lease meanwhile, so no
        other instance calls it abandoned with a vaguer reason first).
        """
        try:
            key = None
            if output is not None and run.status == pb.RUN_STATUS_COMPLETED:
                key = output_key(run.run_id)
                self._pend(key, run.run_id)
                try:
                    self.blobs.put_bytes(key, output)
                except BlobStoreUnavailable as exc:
                    log.warning("run %s: output not stored: %s", run.run_id, exc)
                    run.status = pb.RUN_STATUS_FAILED
                    run.error = f"the output could not be stored: {exc}"
                    run.output_size, run.output_sha256, key = 0, "", None
            with self._db("recording the run's outcome") as db:
                updated = db.execute(
                    runs.update()
                    .where(runs.c.run_id == run.run_id)
                    .where(runs.c.status == records.RUNNING)
                    .where(runs.c.owner == self.instance_id)
                    .values(**records.outcome_row(run), output_key=key, lease_expires_us=None)
                ).rowcount
                if updated and run.step_results:
                    db.execute(step_results.insert(), records.step_rows(run))
                if updated and key is not None:
                    db.execute(pending_blobs.delete().where(pending_blobs.c.key == key))
        except StoreUnavailable as exc:
            with self._lock:
                self._unrecorded[run.run_id] = (
                    f"the run ended but its outcome could not be recorded: {exc}"
                )
            raise
        with self._lock:
            self._leased.discard(run.run_id)
        if not updated:
            # Another instance declared it abandoned (our lease ran out): that
            # record stands; the zip we wrote stays pending and is swept.
            log.warning("run %s was marked failed while it ran; keeping that record", run.run_id)
        return self.get(run.run_id)

    def record_unrecorded(self) -> int:
        """Fail, with the reason, the runs whose outcome the database missed."""
        with self._lock:
            waiting = dict(self._unrecorded)
        now = self._now_us()
        for run_id, reason in waiting.items():
            with self._db("recording a missed outcome") as db:
                db.execute(
                    runs.update()
                    .where(runs.c.run_id == run_id)
                    .where(runs.c.status == records.RUNNING)
                    .where(runs.c.owner == self.instance_id)
                    .values(
                        status=records.FAILED, error=reason, finished_us=now, lease_expires_us=None
                    )
                )
            with self._lock:
                self._unrecorded.pop(run_id, None)
                self._leased.discard(run_id)
            log.warning("run %s recorded as failed: %s", run_id, reason)
        return len(waiting)

    def _pend(self, key: str, run_id: str) -> None:
        with self._db("reserving a blob") as db:
            db.execute(
                pending_blobs.insert().values(key=key, run_id=run_id, created_us=self._now_us())
            )

    # --- reading runs ----------------------------------------------------------

    def get(self, run_id: str) -> pb.Run:
        with self._db("reading a run") as db:
            row = db.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
            if row is None:
                raise RunNotFound(run_id)
            steps = (
                db.execute(sa.select(step_results).where(step_results.c.run_id == run_id))
                .mappings()
                .all()
            )
        return records.run_message(row, steps)

    def page(
        self, page_size: int, token: str, *, max_bytes: int | None = None
    ) -> tuple[list[pb.Run], str]:
        """Newest first. The token carries the sequence number to continue below,
        so runs added or deleted between pages never shift or repeat a page.

        ``max_bytes``: the page ends before the run that would take it over this
        many serialized bytes (it always holds at least one run)."""
        before = _decode_token(token) if token else None
        query = sa.select(runs).order_by(runs.c.seq.desc()).limit(page_size + 1)
        if before is not None:
            query = query.where(runs.c.seq < before)
        with self._db("listing runs") as db:
            rows = db.execute(query).mappings().all()
            chosen = rows[:page_size]
            steps: dict[str, list[sa.RowMapping]] = {row["run_id"]: [] for row in chosen}
            if chosen:
                for step in db.execute(
                    sa.select(step_results).where(step_results.c.run_id.in_(list(steps)))
                ).mappings():
                    steps[step["run_id"]].append(step)
        page = [records.run_message(row, steps[row["run_id"]]) for row in chosen]
        more = len(rows) > page_size
        if max_bytes is not None:
            total = 0
            for kept, run in enumerate(page):
                total += run.ByteSize() + 8  # the field's tag and length
                if total > max_bytes and kept > 0:
                    page, chosen, more = page[:kept], chosen[:kept], True
                    break
        return page, (_encode_token(chosen[-1]["seq"]) if more and chosen else "")

    def last_finished_us(self) -> int | None:
        with self._db("reading the last run") as db:
            value = db.execute(sa.select(sa.func.max(runs.c.finished_us))).scalar_one()
        return None if value is None else int(value)

    def read_output(self, run_id: str, chunk_bytes: int) -> Iterator[bytes]:
        """The output zip in chunks: RunNotFound, OutputMissing or StoreUnavailable first."""
        with self._db("reading a run") as db:
            row = db.execute(
                sa.select(runs.c.status, runs.c.output_key).where(runs.c.run_id == run_id)
            ).first()
        if row is None:
            raise RunNotFound(run_id)
        if row.output_key is None:
            raise OutputMissing(run_id)
        try:
            return self.blobs.read(row.output_key, chunk_bytes)
        except BlobMissing:
            raise OutputMissing(run_id) from None
        except BlobStoreUnavailable as exc:
            raise StoreUnavailable(f"blob store unavailable: {exc}") from exc

    # --- upkeep: leases, abandoned runs, retention, pending blobs ----------------

    def renew_leases(self) -> int:
        with self._lock:
            mine = sorted(self._leased)
        if not mine:
            return 0
        with self._db("renewing leases") as db:
            return db.execute(
                runs.update()
                .where(runs.c.run_id.in_(mine))
                .where(runs.c.owner == self.instance_id)
                .where(runs.c.status == records.RUNNING)
                .values(lease_expires_us=self._now_us() + self.lease_us)
            ).rowcount

    def fail_abandoned(self) -> int:
        """Mark FAILED every RUNNING run whose lease has run out, saying why."""
        now = self._now_us()
        with self._db("failing abandoned runs") as db:
            rows = db.execute(
                sa.select(runs.c.run_id, runs.c.owner, runs.c.lease_expires_us, runs.c.started_us)
                .where(runs.c.status == records.RUNNING)
                .where(runs.c.lease_expires_us < now)
            ).all()
            for row in rows:
                when = datetime.fromtimestamp(row.lease_expires_us / 1e6, UTC)
                db.execute(
                    runs.update()
                    .where(runs.c.run_id == row.run_id)
                    .where(runs.c.status == records.RUNNING)
                    .values(
                        status=records.FAILED,
                        error=(
                            f"abandoned: instance {row.owner} stopped renewing its lease "
                            f"(expired {when:%Y-%m-%dT%H:%M:%SZ}); it was stopped or "
                            "crashed mid-run"
                        ),
                        finished_us=now,
                        duration_ms=(now - row.started_us) / 1000,
                        lease_expires_us=None,
                    )
                )
        for row in rows:
            log.warning("run %s abandoned by instance %s: marked failed", row.run_id, row.owner)
        return len(rows)

    def fail_own_running(self, reason: str) -> int:
        """On shutdown: this instance's runs in flight fail now, not a lease later."""
        with self._lock:
            mine = sorted(self._leased)
        if not mine:
            return 0
        now = self._now_us()
        with self._db("failing this instance's runs") as db:
            return db.execute(
                runs.update()
                .where(runs.c.run_id.in_(mine))
                .where(runs.c.owner == self.instance_id)
                .where(runs.c.status == records.RUNNING)
                .values(status=records.FAILED, error=reason, finished_us=now, lease_expires_us=None)
            ).rowcount

    def apply_retention(self) -> int:
        """Delete finished runs beyond the retention (a batch at a time); returns how many."""
        limits = []
        now = self._now_us()
        if self.retention.days:
            limits.append(runs.c.finished_us < now - self.retention.days * 86_400_000_000)
        with self._db("applying retention") as db:
            if self.retention.runs:
                keep_from = db.execute(
                    sa.select(runs.c.seq)
                    .order_by(runs.c.seq.desc())
                    .offset(self.retention.runs - 1)
                    .limit(1)
                ).scalar_one_or_none()
                if keep_from is not None:
                    limits.append(runs.c.seq < keep_from)
            if not limits:
                return 0
            victims = db.execute(
                sa.select(runs.c.run_id, runs.c.input_key, runs.c.output_key)
                .where(runs.c.status != records.RUNNING)
                .where(sa.or_(*limits))
                .order_by(runs.c.seq)
                .limit(RETENTION_BATCH)
            ).all()
            keys = [
                {"key": key, "run_id": v.run_id, "created_us": now}
                for v in victims
                for key in (v.input_key, v.output_key)
                if key is not None
            ]
            if keys:
                db.execute(pending_blobs.insert(), keys)
            ids = [v.run_id for v in victims]
            if ids:
                db.execute(step_results.delete().where(step_results.c.run_id.in_(ids)))
                db.execute(runs.delete().where(runs.c.run_id.in_(ids)))
        self._delete_blobs([k["key"] for k in keys])
        if victims:
            log.info("retention deleted %d runs and %d zips", len(victims), len(keys))
        return len(victims)

    def sweep_pending(self) -> int:
        """Delete blobs that no run refers to and no live run is still writing."""
        now = self._now_us()
        with self._db("sweeping pending blobs") as db:
            rows = db.execute(
                sa.select(
                    pending_blobs.c.key,
                    pending_blobs.c.created_us,
                    runs.c.status,
                    runs.c.lease_expires_us,
                    runs.c.input_key,
                    runs.c.output_key,
                )
                .select_from(pending_blobs.outerjoin(runs, runs.c.run_id == pending_blobs.c.run_id))
                .limit(RETENTION_BATCH)
            ).all()
        doomed, claimed = [], []
        for row in rows:
            if row.key in (row.input_key, row.output_key):
                claimed.append(row.key)  # referenced: the pending row is only a leftover
            elif row.status is None:
                if now - row.created_us > UNCLAIMED_BLOB_GRACE_S * 1_000_000:
                    doomed.append(row.key)  # no run will ever claim it
            elif row.status != records.RUNNING or (row.lease_expires_us or 0) < now:
                doomed.append(row.key)  # its run ended without it
        if claimed:
            with self._db("sweeping pending blobs") as db:
                db.execute(pending_blobs.delete().where(pending_blobs.c.key.in_(claimed)))
        self._delete_blobs(doomed)
        return len(doomed)

    def _delete_blobs(self, keys: list[str]) -> None:
        done = []
        for key in keys:
            try:
                self.blobs.delete(key)
            except BlobStoreUnavailable as exc:
                log.warning("could not delete %s (retried by the next sweep): %s", key, exc)
                continue
            done.append(key)
        if done:
            with self._db("sweeping pending blobs") as db:
                db.execute(pending_blobs.delete().where(pending_blobs.c.key.in_(done)))

    def upkeep(self) -> None:
        """One round of everything above; raises StoreUnavailable when the store is away."""
        self.renew_leases()
        self.record_unrecorded()
        self.fail_abandoned()
        self.apply_retention()
        self.sweep_pending()


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        prefix, _, seq = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix != "v1":
            raise ValueError(prefix)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        shown = token if len(token) <= 40 else token[:40] + "…"
        raise BadPageToken(f"page_token {shown!r} is not a token this service issued") from None
