"""The metrics both services record, named in one place (ADR 0027).

Names, units and attributes follow the OpenTelemetry semantic conventions where
one exists: a request is one histogram, ``rpc.server.duration``,
``rpc.client.duration`` or ``http.server.request.duration``, in seconds; its
count is the request count, and a failed request carries ``error.type`` (the
gRPC status name, or the HTTP status code), so an error ratio is
``count{error.type!=""} / count`` of one metric, with no second counter to
keep in step. Durations are seconds (UCUM ``s``), as the conventions say; the
bucket edges start at 100 µs so a warm loopback call (~0.3-0.6 ms, bench/)
lands in a bucket of its own instead of the first one, and end at 15 minutes
(the pipeline's Cloud Run timeout).

Metrics with no convention are ours and say so by their prefix:
``pipeline.run.*``, ``pipeline.step.duration``, ``pipeline.upload.size`` and
``*.refused`` (requests turned away before any work, by ``reason``).
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import metrics

# Seconds: 100 µs .. 15 min. Cloud Monitoring keeps these edges as they are.
DURATION_BUCKETS_S = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900,
)  # fmt: skip
# Bytes: 1 KiB .. 1 GiB in powers of four (a trimmed test feed to the biggest upload).
SIZE_BUCKETS_BYTES = tuple(1024 * 4**i for i in range(11))

RPC_SERVER = "rpc.server.duration"  # pipeline: per RPC it serves
RPC_CLIENT = "rpc.client.duration"  # console: per RPC it makes
HTTP_SERVER = "http.server.request.duration"  # console: per route
STEP_DURATION = "pipeline.step.duration"
RUN_DURATION = "pipeline.run.duration"
RUNS_ACTIVE = "pipeline.run.active"
UPLOAD_SIZE = "pipeline.upload.size"
RPC_REFUSED = "rpc.server.refused"
HTTP_REFUSED = "http.server.refused"
# Set on a failed request's point and span, per the conventions.
ERROR_TYPE = "error.type"


def duration_histogram(meter: metrics.Meter, name: str, description: str) -> metrics.Histogram:
    return meter.create_histogram(
        name,
        unit="s",
        description=description,
        explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
    )


@dataclass(frozen=True)
class RequestInstruments:
    """The duration histogram of one kind of request (RPC or route)."""

    duration: metrics.Histogram

    @classmethod
    def create(cls, meter: metrics.Meter, name: str, what: str) -> RequestInstruments:
        return cls(duration_histogram(meter, name, f"Duration of {what}"))

    def record(self, seconds: float, attributes: dict[str, str], *, error_type: str | None) -> None:
        """One request; `error_type` (e.g. "UNAVAILABLE", "500") when it failed."""
        if error_type is not None:
            attributes = {**attributes, ERROR_TYPE: error_type}
        self.duration.record(seconds, attributes)


def refused_counter(meter: metrics.Meter, name: str) -> metrics.Counter:
    return meter.create_counter(
        name,
        unit="{request}",
        description="Requests refused before any work, by reason",
    )
