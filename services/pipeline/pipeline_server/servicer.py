"""pipeline.v1.PipelineService: the gRPC face of one loaded pipeline.

Bad input never takes the server down: every rejection is a status code with
a message saying what is wrong (INVALID_ARGUMENT, RESOURCE_EXHAUSTED,
NOT_FOUND), and a run that fails inside the pipeline is a *failed run*, not
an RPC error.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import NoReturn

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc

from .bounds import Receiver, StreamTimeout, bounded, shown
from .feed import FeedError, FeedLimits, FeedSummary, FeedTooLarge, inspect_feed
from .loader import LoadedPipeline
from .memory import MemoryExhausted, budget
from .runner import RunTelemetry, execute
from .settings import Settings
from .spool import Spool
from .store import (
    BadPageToken,
    OutputMissing,
    RunNotFound,
    RunStore,
    StoreMonitor,
    StoreUnavailable,
    TooManyRuns,
)
from .store.records import MAX_LABEL_CHARS, timestamp

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# MAX_LABEL_CHARS (256): a label is a file name or a short note, and 255 bytes is
# the longest file name most file systems allow.
# What one ListRuns page may weigh: the console's channel takes 4 MiB messages.
# A page holds the runs that fit (at least one); the next page starts after them.
MAX_PAGE_BYTES = 3 * 1024 * 1024
# Run ids are uuid4().hex: 32 lowercase hex characters.
RUN_ID = re.compile(r"[0-9a-f]{32}")


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    """End the RPC with `code`. grpc raises inside `context.abort`; the raise
    below only tells the type checker that control never comes back."""
    context.abort(code, bounded(message))
    raise AssertionError("context.abort returned")


CALLER_GONE = (
    "the caller went away before the run finished (cancelled, disconnected or the"
    " server shut down); the run was stopped and its output discarded"
)


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


class PipelineServicer(pb_grpc.PipelineServiceServicer):
    def __init__(
        self,
        pipeline: LoadedPipeline,
        settings: Settings,
        store: RunStore,
        monitor: StoreMonitor,
        spool: Spool,
        observe: RunTelemetry | None = None,
        *,
        receive_pool: futures.Executor,
    ) -> None:
        self._receive_pool = receive_pool
        self._pipeline = pipeline
        self._observe = observe
        self._settings = settings
        self._store = store
        self._monitor = monitor
        self._spool = spool
        self._memory = budget(settings.memory_limit_bytes, settings.memory_reserve_bytes)
        # The DAG never changes while an instance lives, so neither does the answer
        # to GetDag: built once here, sent as it is on every call (ADR 0026).
        self._dag = pb.GetDagResponse(
            reactflow_json=pipeline.reactflow_json,
            node_count=len(pipeline.reactflow["nodes"]),
            edge_count=len(pipeline.reactflow["edges"]),
        )
        self._limits = FeedLimits(
            # Default: stop decompressing at the largest feed this instance could run.
            max_uncompressed_bytes=settings.max_uncompressed_bytes or self._memory.largest_feed(),
            max_compression_ratio=settings.max_compression_ratio,
            max_entries=settings.max_zip_entries,
        )

    # --- read-only ---------------------------------------------------------

    def GetStatus(
        self, request: pb.GetStatusRequest, context: grpc.ServicerContext
    ) -> pb.GetStatusResponse:
        response = pb.GetStatusResponse(
            healthy=bool(self._monitor.ok),
            unhealthy_reason="" if self._monitor.ok else self._monitor.reason,
            pipeline_name=self._pipeline.name,
            step_count=len(self._pipeline.steps),
            version=self._settings.image_commit,
            active_runs=self._store.active,
            framework_version=self._pipeline.framework_version,
        )
        # Status answers even when the store does not: it is how one finds out why.
        if self._monitor.ok:
            try:
                response.active_runs_all_instances = self._store.active_everywhere()
                last = self._store.last_finished_us()
            except StoreUnavailable as exc:
                response.healthy, response.unhealthy_reason = False, str(exc)
            else:
                if last is not None:
                    response.last_run_time.CopyFrom(timestamp(last))
        return response

    def ListSteps(
        self, request: pb.ListStepsRequest, context: grpc.ServicerContext
    ) -> pb.ListStepsResponse:
        steps = [
            pb.Step(
                name=s.name,
                type=pb.STEP_TYPE_BUILTIN if s.is_builtin else pb.STEP_TYPE_CUSTOM,
                builtin_class=s.builtin_name or "",
                files=list(s.files),
                description=(s.description or "").strip(),
                index=i,
                enabled=s.enabled,
            )
            for i, s in enumerate(self._pipeline.steps)
        ]
        return pb.ListStepsResponse(steps=steps)

    def GetDag(self, request: pb.GetDagRequest, context: grpc.ServicerContext) -> pb.GetDagResponse:
        # grpc only serializes the response; nothing mutates it.
        return self._dag

    def GetRun(self, request: pb.GetRunRequest, context: grpc.ServicerContext) -> pb.Run:
        return self._get(request.run_id, context)

    def ListRuns(
        self, request: pb.ListRunsRequest, context: grpc.ServicerContext
    ) -> pb.ListRunsResponse:
        if request.page_size < 0:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, "page_size must not be negative")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        try:
            runs, token = self._store.page(size, request.page_token, max_bytes=MAX_PAGE_BYTES)
        except BadPageToken as exc:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except StoreUnavailable as exc:
            abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        return pb.ListRunsResponse(runs=runs, next_page_token=token)

    def DownloadOutput(
        self, request: pb.DownloadOutputRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.DownloadOutputResponse]:
        run = self._get(request.run_id, context)
        if run.status != pb.RUN_STATUS_COMPLETED:
            abort(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"run {run.run_id} has no output: it is {pb.RunStatus.Name(run.status)}",
            )
        try:
            chunks = self._store.read_output(run.run_id, self._settings.download_chunk_bytes)
        except RunNotFound:  # deleted by retention between the two reads
            abort(context, grpc.StatusCode.NOT_FOUND, f"no run {run.run_id}")
        except OutputMissing:
            abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"the output of run {run.run_id} is no longer in the run store",
            )
        except StoreUnavailable as exc:
            abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        try:
            for chunk in chunks:
                yield pb.DownloadOutputResponse(chunk=chunk)
        except StoreUnavailable as exc:
            abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))

    def _get(self, run_id: str, context: grpc.ServicerContext) -> pb.Run:
        if not run_id:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, "run_id is required")
        if not RUN_ID.fullmatch(run_id):
            # Names no run: answered without asking the store.
            abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"no run {shown(run_id)}: run ids are 32 lowercase hexadecimal characters",
            )
        try:
            return self._store.get(run_id)
        except RunNotFound:
            abort(context, grpc.StatusCode.NOT_FOUND, f"no run {shown(run_id)}")
        except StoreUnavailable as exc:
            abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))

    # --- runs --------------------------------------------------------------

    def RunPipeline(
        self, request_iterator: Iterator[pb.RunPipelineRequest], context: grpc.ServicerContext
    ) -> pb.Run:
        if not self._monitor.ok:
            abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                f"no run started: {self._monitor.reason}",
            )
        messages = Receiver(
            request_iterator,
            self._receive_pool,
            idle_s=self._settings.stream_idle_seconds,
            total_s=self._settings.upload_seconds,
        )
        try:
            return self._run_stream(messages, context)
        except StreamTimeout as exc:
            log.info("RunPipeline ended: %s", exc)
            abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, str(exc))
        finally:
            messages.close()

    def _run_stream(
        self, request_iterator: Iterator[pb.RunPipelineRequest], context: grpc.ServicerContext
    ) -> pb.Run:
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("payload") != "options":
            abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "the first RunPipeline message must carry options, the rest the zip in chunks",
            )
        options = first.options
        if len(options.label) > MAX_LABEL_CHARS:
            abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"label is {len(options.label)} characters; the limit is {MAX_LABEL_CHARS}",
            )
        unknown = sorted(set(options.disabled_steps) - set(self._pipeline.step_names()))
        if unknown:
            named = ", ".join(shown(name) for name in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"disabled_steps names unknown steps [{named}]{more}; "
                f"steps are {self._pipeline.step_names()}",
            )
        if options.declared_size < 0:
            abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"declared_size is {options.declared_size}: a size, or 0 for unknown",
            )
        cap = self._settings.max_upload_bytes
        if options.declared_size > cap:
            abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"upload too large: {options.declared_size} bytes declared, limit {cap} bytes",
            )
        try:
            with self._store.slot():
                return self._run(options, request_iterator, context)
        except TooManyRuns as exc:
            abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))

    def _run(
        self,
        options: pb.RunOptions,
        chunks: Iterator[pb.RunPipelineRequest],
        context: grpc.ServicerContext,
    ) -> pb.Run:
        run_id = self._store.new_run_id()
        upload = self._spool.path(run_id)
        reserved = 0
        # Set when the RPC ends before we answer: the caller went away (or the
        # server's grace ran out and grpc cancelled it). The run stops at its next
        # step boundary and is recorded failed, never completed.
        gone = threading.Event()
        context.add_callback(gone.set)
        try:
            size, digest = self._receive(chunks, upload, context)
            if self._observe is not None:
                self._observe.uploaded(size)
            reserved = self._admit(run_id, upload, size, context)
            run = pb.Run(
                run_id=run_id,
                status=pb.RUN_STATUS_RUNNING,
                label=options.label,
                started_at=_now(),
                input_size=size,
                input_sha256=digest,
                version=self._settings.image_commit,
            )
            try:
                self._store.start(run, upload)
            except StoreUnavailable as exc:
                abort(context, grpc.StatusCode.UNAVAILABLE, f"no run started: {exc}")
            log.info("run %s started (%d bytes, label %s)", run_id, size, shown(options.label))
            return self._execute(run, upload, list(options.disabled_steps), context, gone)
        finally:
            self._memory.release(reserved)
            upload.unlink(missing_ok=True)

    def _admit(self, run_id: str, upload: Path, size: int, context: grpc.ServicerContext) -> int:
        """Inspect the feed and reserve its predicted memory (released by the caller)."""
        try:
            summary: FeedSummary = inspect_feed(upload, self._limits)
        except FeedTooLarge as exc:
            log.info("run %s refused: %s", run_id, exc)
            abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc}; {self._memory.describe()}")
        except FeedError as exc:
            log.info("run %s rejected: %s", run_id, exc)
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"invalid feed: {exc}")
        try:
            return self._memory.admit(summary.uncompressed_bytes, summary.fields, size)
        except MemoryExhausted as exc:
            log.info("run %s refused: %s", run_id, exc)
            abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))

    def _receive(
        self, chunks: Iterator[pb.RunPipelineRequest], upload: Path, context: grpc.ServicerContext
    ) -> tuple[int, str]:
        """Spool the chunks to disk (never the whole feed in memory twice)."""
        cap = self._settings.max_upload_bytes
        size, digest = 0, hashlib.sha256()
        with upload.open("wb") as fh:
            for message in chunks:
                if message.WhichOneof("payload") != "chunk":
                    abort(
                        context,
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "options may only be sent once, in the first message",
                    )
                size += len(message.chunk)
                if size > cap:
                    abort(
                        context,
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"upload too large: more than {cap} bytes received, limit {cap} bytes",
                    )
                digest.update(message.chunk)
                try:
                    fh.write(message.chunk)
                except OSError as exc:
                    self._spool_failed(exc, size, context)
        if size == 0:
            abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "no feed received: send the zip in chunks",
            )
        return size, digest.hexdigest()

    def _spool_failed(self, exc: OSError, size: int, context: grpc.ServicerContext) -> NoReturn:
        """The data disk refused the upload: the caller hears why, in our words."""
        log.warning("spooling an upload failed after %d bytes: %s", size, exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"no space left on this instance's data disk for the upload "
                f"({size} bytes received); retry later or send a smaller feed",
            )
        abort(
            context,
            grpc.StatusCode.UNAVAILABLE,
            "this instance cannot write the upload to its data disk; retry later",
        )

    def _execute(
        self,
        run: pb.Run,
        upload: Path,
        disabled: list[str],
        context: grpc.ServicerContext,
        gone: threading.Event,
    ) -> pb.Run:
        start = time.perf_counter()

        def stop_reason() -> str | None:
            return CALLER_GONE if gone.is_set() else None

        try:
            outcome = execute(self._pipeline, upload, disabled, self._observe, stop_reason)
        except Exception as exc:  # a broken step module must not take the server down
            log.exception("run %s crashed", run.run_id)
            run.status = pb.RUN_STATUS_FAILED
            run.error = f"pipeline crashed: {type(exc).__name__}: {exc}"
            output = None
        else:
            run.status = outcome.status
            run.error = outcome.error
            run.step_results.extend(outcome.step_results)
            output = outcome.output
            if gone.is_set() and run.status == pb.RUN_STATUS_COMPLETED:
                # Finished just as the caller left: nobody received it.
                run.status, run.error, output = pb.RUN_STATUS_FAILED, CALLER_GONE, None
            if output is not None:
                run.output_size = len(output)
                run.output_sha256 = hashlib.sha256(output).hexdigest()
        run.finished_at.CopyFrom(_now())
        run.duration_ms = (time.perf_counter() - start) * 1000
        try:
            stored = self._store.finish(run, output)
        except StoreUnavailable as exc:
            log.error("run %s: outcome not recorded: %s", run.run_id, exc)
            abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                f"run {run.run_id} ended but its outcome could not be recorded ({exc}); "
                "it will be marked failed",
            )
        log.info(
            "run %s %s in %.0f ms",
            run.run_id,
            pb.RunStatus.Name(stored.status),
            run.duration_ms,
        )
        return stored
