"""The floor: what the same container answers when nothing but a bare loop asks.

Three plain loops, one call at a time on one connection, no Locust, no gevent:

- `health`: grpc.health.v1 Check — the cheapest call the server has (the gRPC
  stack, the connection and the machine, no service code); warm p50 ÷ this p50
  is what the service adds on top of gRPC itself, under load;
- `get_dag`: GetDag with a plain stub — Locust's GetDag p50 ÷ this p50 is the
  load generator's own overhead (with one Locust user) or its overhead plus
  queueing (with the warm phase's users);
- `get_dag_paced`: the same plain GetDag loop, pausing between calls as the
  Locust users do (`wait_min`..`wait_max`). On an otherwise idle machine a call
  after a pause is markedly slower than one in a tight loop (threads and CPUs
  go idle and must wake up), so warm Locust p50 ÷ *this* p50 is the fair
  "Locust vs plain client at the same pace" comparison;
- `console_dag`: GET /api/dag over one keep-alive HTTP connection — ÷ the
  plain GetDag p50 is the console's HTTP → gRPC hop.

Each loop warms up first (not recorded), then stops at `max_calls` or
`max_seconds`, whichever comes first, so it is bounded on any machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.histogram import Histogram
from bench.targets import GrpcTarget, IdTokens, console_audience, open_channel, with_auth
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc

WARMUP_CALLS = 50
CALL_TIMEOUT_S = 10.0


# A paced loop makes at most this many calls: it is bounded by time anyway.
PACED_MAX_CALLS = 200
# Fractional part of i x the golden ratio: pauses spread evenly over
# [wait_min, wait_max] without a random generator, the same on every run.
_GOLDEN = 0.6180339887


@dataclass(frozen=True)
class Bounds:
    max_calls: int = 5000
    max_seconds: float = 5.0
    # Pauses of the paced loop: the warm phase's Locust wait time.
    wait_min: float = 0.05
    wait_max: float = 0.2


def timed_loop(
    call: Callable[[], object],
    bounds: Bounds,
    pace: tuple[float, float] | None = None,
    warmup: int = WARMUP_CALLS,
) -> Histogram:
    """`call` timed in µs: `warmup` calls unrecorded, then until `bounds` (calls or seconds)."""
    for _ in range(warmup):
        call()
    hist = Histogram()
    deadline = time.perf_counter() + bounds.max_seconds
    max_calls = min(bounds.max_calls, PACED_MAX_CALLS) if pace else bounds.max_calls
    while hist.count < max_calls:
        if pace:
            low, high = pace
            time.sleep(low + (high - low) * ((hist.count * _GOLDEN) % 1.0))
        t0 = time.perf_counter_ns()
        call()
        t1 = time.perf_counter_ns()
        hist.record((t1 - t0) // 1000)
        if t1 / 1e9 >= deadline:
            break
    return hist


def health_loop(target: GrpcTarget, bounds: Bounds) -> Histogram:
    with open_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(with_auth(channel, target))
        request = health_pb2.HealthCheckRequest(service="")
        return timed_loop(lambda: stub.Check(request, timeout=CALL_TIMEOUT_S), bounds)


def get_dag_loop(target: GrpcTarget, bounds: Bounds, paced: bool = False) -> Histogram:
    with open_channel(target) as channel:
        stub = pb_grpc.PipelineServiceStub(with_auth(channel, target))
        request = pb.GetDagRequest()
        pace = (bounds.wait_min, max(bounds.wait_min, bounds.wait_max)) if paced else None
        return timed_loop(lambda: stub.GetDag(request, timeout=CALL_TIMEOUT_S), bounds, pace)


def console_dag_loop(console_url: str, bounds: Bounds) -> Histogram:
    audience = console_audience(console_url)
    tokens = IdTokens(audience) if audience else None
    with httpx.Client(base_url=console_url, timeout=CALL_TIMEOUT_S) as client:

        def call() -> None:
            headers = {"authorization": tokens.header()} if tokens else {}
            client.get("/api/dag", headers=headers).raise_for_status()

        return timed_loop(call, bounds)


def run(target: GrpcTarget, console_url: str | None, bounds: Bounds) -> dict[str, Histogram]:
    """Every loop (the console one when a console is given), one after another."""
    out = {
        "health_check": health_loop(target, bounds),
        "get_dag": get_dag_loop(target, bounds),
        "get_dag_paced": get_dag_loop(target, bounds, paced=True),
    }
    if console_url:
        out["console_dag"] = console_dag_loop(console_url, bounds)
    return out
