"""Build and run the gRPC server: pipeline.v1, grpc.health.v1, reflection."""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
import time
import uuid
from concurrent import futures
from dataclasses import dataclass
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from telemetry import Telemetry
from telemetry.grpc_server import ServerTelemetryInterceptor

from .bounds import CallBounds, MethodLimit
from .loader import LoadedPipeline, load_pipeline
from .runner import RunTelemetry
from .servicer import PipelineServicer
from .settings import Settings
from .spool import Spool
from .store import Retention, RunStore, StoreMonitor, create_engine, open_blob_store, parse_url

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PipelineService"].full_name
RUN_PIPELINE = f"/{SERVICE_NAME}/RunPipeline"
DOWNLOAD_OUTPUT = f"/{SERVICE_NAME}/DownloadOutput"
# Upload streams admitted beyond the run slots: enough that a caller over the run
# limit is told "N runs in progress" (once it has sent its options), few enough
# that idle streams hold only a handful of threads until their idle timeout.
EXTRA_UPLOAD_STREAMS = 2
# After the grace, how long stop() waits for cancelled runs to reach a step boundary.
STOP_WAIT_SECONDS = 1.0
# Chunks are ~1 MiB; 8 MiB leaves room for a client that sends bigger ones
# without letting one message hold the whole feed.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


@dataclass
class RunningServer:
    server: grpc.Server
    health: health.HealthServicer
    port: int
    pipeline: LoadedPipeline
    store: RunStore
    monitor: StoreMonitor
    spool: Spool
    bounds: CallBounds

    def stop(self, grace: float | None) -> int:
        """Drain for ``grace`` seconds, cancel what is left, fail its runs.

        Returns how many runs are still computing (a step that does not end at
        once): their threads are abandoned; the caller should exit without
        waiting for them (``__main__`` does)."""
        # Tell load balancers and the console first, then drain.
        self.health.enter_graceful_shutdown()
        # The grace covers the whole shutdown: calls drain for all but the last
        # STOP_WAIT_SECONDS of it, which cancelled runs get to reach a step boundary.
        drain = None if grace is None else max(grace - STOP_WAIT_SECONDS, 0.0)
        self.server.stop(drain).wait()
        # grpc has cancelled every call still open: each run in flight sees its
        # caller gone and stops at its next step boundary.
        self.bounds.shutdown()
        # Runs still executing after the grace will never report: say so now rather
        # than a lease later. Their threads may still finish; the store keeps this
        # record (it never turns a failed run back into a completed one).
        try:
            failed = self.store.fail_own_running(
                "the instance shut down mid-run; start the run again"
            )
            if failed:
                log.warning("%d runs in flight at shutdown marked failed", failed)
        except Exception as exc:
            log.warning("could not mark in-flight runs failed at shutdown: %s", exc)
        # A cancelled run stops at its next step boundary; give it a moment.
        deadline = time.monotonic() + (STOP_WAIT_SECONDS if grace else 0.0)
        while self.store.active and time.monotonic() < deadline:
            time.sleep(0.05)
        still_running = self.store.active
        if still_running:
            log.warning(
                "%d runs still inside a step after the grace; not waiting for them", still_running
            )
        self.monitor.stop()
        self.store.engine.dispose()
        self.spool.close()
        return still_running


def instance_id() -> str:
    """Who owns a run's lease: the Cloud Run revision (or host), process and a nonce."""
    where = os.environ.get("K_REVISION") or socket.gethostname()
    return f"{where}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def open_store(settings: Settings, owner: str) -> RunStore:
    return RunStore(
        create_engine(parse_url(settings.store_database_url), settings.store_timeout_seconds),
        open_blob_store(settings.store_output_url, settings.store_timeout_seconds),
        max_concurrent=settings.max_concurrent_runs,
        lease_s=settings.run_lease_seconds,
        retention=Retention(days=settings.retention_days, runs=settings.retention_runs),
        instance_id=owner,
    )


def call_bounds(settings: Settings) -> CallBounds:
    """Uploads and downloads on pools of their own, each admitting only its size."""
    return CallBounds(
        {
            RUN_PIPELINE: MethodLimit(
                settings.max_concurrent_runs + EXTRA_UPLOAD_STREAMS,
                "upload streams: PIPELINE_MAX_CONCURRENT_RUNS + 2",
            ),
            DOWNLOAD_OUTPUT: MethodLimit(
                settings.max_downloads, "downloads: PIPELINE_MAX_DOWNLOADS"
            ),
        },
        # One reader per admitted upload stream (bounds.Receiver).
        receive_threads=settings.max_concurrent_runs + EXTRA_UPLOAD_STREAMS,
    )


# rpc.server.refused's reason, by a phrase of the refusal's status message
# (servicer, feed, memory, auth); any other refusal is counted by its status name.
REFUSAL_REASONS = {
    "upload too large": "upload_too_large",
    "feed too large for this instance's memory": "feed_too_large_for_memory",
    "feed too large": "feed_too_large",
    "not enough memory free": "memory_busy",
    "no space left": "disk_full",
}


def interceptors(
    settings: Settings, telemetry: Telemetry, bounds: CallBounds
) -> list[grpc.ServerInterceptor]:
    """Call bounds outermost: a call over its method's limit is refused before any
    other work, and the pool its behaviour runs on is set on the final handler
    (grpc reads it from there). Telemetry next, so the calls it admits, refused
    by auth or not, are traced, counted and logged with their request id."""
    observed = ServerTelemetryInterceptor(telemetry, refusal_reasons=REFUSAL_REASONS)
    bounds.on_refused = lambda method: observed.refused(
        method, grpc.StatusCode.RESOURCE_EXHAUSTED, "calls_in_progress"
    )
    chain: list[grpc.ServerInterceptor] = [bounds, observed]
    if settings.require_id_token:
        # Imported only when tokens are checked: google.auth, cryptography and
        # requests are ~60 ms of start-up an instance without tokens never uses
        # (ADR 0026).
        from .auth import IdTokenInterceptor, IdTokenVerifier

        verifier = IdTokenVerifier(
            settings.token_audiences, settings.allowed_invokers, settings.id_token_certs_url
        )
        chain.append(IdTokenInterceptor(verifier))
        log.info(
            "ID tokens required: audience %s, invokers %s, certificates from %s",
            ", ".join(settings.token_audiences),
            ", ".join(sorted(settings.allowed_invokers)),
            settings.id_token_certs_url,
        )
    return chain


def start(
    settings: Settings, *, host: str | None = None, telemetry: Telemetry | None = None
) -> RunningServer:
    """Load the pipeline (failing loudly), then bind and start serving.

    Health turns SERVING only after the DAG is resolved, the port bound and the
    run store reachable (migrated); it goes NOT_SERVING whenever the store is
    not, and back when it returns.
    """
    telemetry = telemetry or Telemetry.noop()
    host = host or settings.listen_host
    pipeline = load_pipeline(settings.pipelines_dir, settings.pipeline_name)
    log.info(
        "loaded pipeline %s: %d steps, order %s",
        pipeline.name,
        len(pipeline.steps),
        " -> ".join(pipeline.step_names()),
    )
    owner = instance_id()
    store = open_store(settings, owner)
    spool = Spool(settings.data_dir / "spool", owner)
    bounds = call_bounds(settings)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="rpc"),
        interceptors=interceptors(settings, telemetry, bounds),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Accept the console's keepalive pings (every 30 s) without GOAWAY.
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # Two servers on one port must fail loudly, not share traffic.
            ("grpc.so_reuseport", 0),
        ],
    )
    health_servicer = health.HealthServicer(
        experimental_non_blocking=True,
        experimental_thread_pool=futures.ThreadPoolExecutor(max_workers=2),
    )

    def serving(ok: bool, _reason: str) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ok
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            health_servicer.set(name, status)

    # Checked every third of a lease (leases are renewed then), at most every 5 s.
    monitor = StoreMonitor(store, min(settings.run_lease_seconds / 3, 5.0), serving)
    pb_grpc.add_PipelineServiceServicer_to_server(
        PipelineServicer(
            pipeline,
            settings,
            store,
            monitor,
            spool,
            RunTelemetry(telemetry, pipeline.name),
            receive_pool=bounds.receive_pool,
        ),
        server,
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        port = server.add_insecure_port(f"{host}:{settings.port}")
    except RuntimeError as exc:  # grpc reports a failed bind this way
        spool.close()
        store.engine.dispose()
        bounds.shutdown()
        raise OSError(f"could not bind {host}:{settings.port} (PORT): address in use?") from exc
    # The store is opened (and migrated) before the first call is taken, so a healthy
    # store never shows callers a NOT_SERVING moment. One that cannot be reached now
    # is retried by the monitor: the instance serves NOT_SERVING with the reason
    # rather than crash-looping.
    serving(monitor.first_check(), monitor.reason)
    server.start()
    log.info("listening on %s:%d", host, port)
    monitor.start()
    return RunningServer(server, health_servicer, port, pipeline, store, monitor, spool, bounds)


def serve(settings: Settings, telemetry: Telemetry | None = None) -> int:
    """Serve until SIGTERM/SIGINT, then shut down gracefully; returns how many
    runs were still computing when it gave up on them (see RunningServer.stop)."""
    running = start(settings, telemetry=telemetry)
    # SERVING: what start-up built lives as long as the process. Freezing it keeps
    # the cyclic collector from walking it on every collection from now on, and
    # turns the collector back on if __main__ turned it off for start-up (ADR 0026).
    gc.freeze()
    gc.enable()
    stopping = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    abandoned = 0
    try:
        stopping.wait()
    finally:
        abandoned = running.stop(settings.shutdown_grace_seconds)
        log.info("stopped")
    return abandoned
