"""The metrics both services record, named in one place.

Counts and errors are counters of their own (not only a histogram's count), so
a dashboard can chart an error rate without knowing histogram internals.
Durations are in milliseconds: the warm calls measured by the bench are
sub-millisecond, and the default bucket edges are too coarse in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import metrics

# Bucket edges (ms) spanning a warm unary call (~0.3 ms) to a big run (minutes).
DURATION_BUCKETS_MS = (
    0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000,
    10_000, 30_000, 60_000, 300_000,
)  # fmt: skip


@dataclass(frozen=True)
class RequestInstruments:
    """requests, errors and duration of one kind of request (RPC or route)."""

    requests: metrics.Counter
    errors: metrics.Counter
    duration: metrics.Histogram

    @classmethod
    def create(cls, meter: metrics.Meter, prefix: str, what: str) -> RequestInstruments:
        return cls(
            requests=meter.create_counter(
                f"{prefix}.requests", unit="{request}", description=f"{what} handled"
            ),
            errors=meter.create_counter(
                f"{prefix}.errors", unit="{request}", description=f"{what} that failed"
            ),
            duration=meter.create_histogram(
                f"{prefix}.duration",
                unit="ms",
                description=f"Duration of {what}",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS_MS,
            ),
        )

    def record(self, duration_ms: float, attributes: dict[str, str], *, failed: bool) -> None:
        self.requests.add(1, attributes)
        if failed:
            self.errors.add(1, attributes)
        self.duration.record(duration_ms, attributes)


RPC_SERVER = "rpc.server"  # pipeline: per RPC it serves
RPC_CLIENT = "rpc.client"  # console: per RPC it makes
HTTP_SERVER = "http.server.route"  # console: per route (the instrumentation owns http.server.*)
STEP_DURATION = "pipeline.step.duration"
RUN_DURATION = "pipeline.run.duration"
