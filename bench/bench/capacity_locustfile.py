"""Open-loop arrivals at one fixed rate: the load generator of one capacity step.

The runner (bench/capacity.py) starts one Locust process tree per step::

    python -m locust -f bench/capacity_locustfile.py --headless --users U --spawn-rate U \\
        --run-time T [--processes N] --cap-call get_dag --cap-target 127.0.0.1:50051 \\
        --cap-rate 800 --cap-users U --cap-warmup 1 --cap-seconds 4 --cap-out DIR

Open loop, not Locust's usual closed loop: each of the U users sends at
rate/U, evenly spaced from a random phase of its own (so the sum is `--cap-rate`
spread evenly over time, however the users are spread over processes; Poisson
arrivals would add ±5 % of noise to the count of a 4-second step), and every
latency is measured from the *intended* send time, not from when the user got
round to sending. A server
that falls behind therefore shows as growing latency and missing throughput,
as real clients would see it, instead of quietly slowing the generator down
(coordinated omission). A user still busy at its next arrival sends at once
and counts a late start: with enough users that only happens when the
generator itself cannot keep up, which its CPU share (measured over the
window, per process) says too.

Each process writes `cap-<host>-<pid>.json` into `--cap-out` at test stop:
µs histogram of successful calls intended inside the window (from
`--cap-warmup` after every user has spawned, for `--cap-seconds`), errors by
code, calls sent and late, and the process's CPU seconds over the window. The
runner merges every process's file; the master of a `--processes` run makes no
calls and writes none.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User, constant, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

# gRPC's C core must poll through gevent before the first channel exists.
grpc_gevent.init_gevent()

from geventhttpclient import HTTPClient  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from bench.histogram import Histogram  # noqa: E402
from bench.targets import (  # noqa: E402
    IdTokens,
    console_audience,
    open_channel,
    parse_grpc_target,
    with_auth,
)
from pipeline.v1 import pipeline_pb2 as pb  # noqa: E402
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc  # noqa: E402

hooks: Any = events
SCHEMA = 1
#: What a step can call: the bare server's health Check, the pipeline's GetDag,
#: the console's GET /api/dag.
CALLS = ("health", "get_dag", "api_dag")
# A send this much after its intended time is a late start (the generator lagged).
LATE_AFTER_S = 0.001
# After the window closes, calls sent inside it get this long to finish.
DRAIN_S = 0.5


class StepRecorder:
    """What this process saw of the calls intended inside the window."""

    def __init__(self) -> None:
        self.histogram = Histogram()
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self.late = 0
        self.window: tuple[float, float] | None = None  # perf_counter bounds
        self.cpu_at_open: float | None = None
        self.cpu_s: float | None = None

    def inside(self, intended: float) -> bool:
        return self.window is not None and self.window[0] <= intended < self.window[1]

    def to_json(self) -> dict[str, Any]:
        window_s = self.window[1] - self.window[0] if self.window else 0.0
        return {
            "schema": SCHEMA,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "window_s": round(window_s, 3),
            "sent": self.sent,
            "late": self.late,
            "errors": dict(self.errors),
            "cpu_s": None if self.cpu_s is None else round(self.cpu_s, 4),
            "histogram": self.histogram.to_json(),
        }


RECORDER = StepRecorder()


def _options(parser: Any) -> None:
    group = parser.add_argument_group("capacity step (bench/capacity_locustfile.py)")
    group.add_argument("--cap-call", choices=CALLS, default="get_dag")
    group.add_argument("--cap-target", default="127.0.0.1:50051", help="host:port or URL")
    group.add_argument("--cap-rate", type=float, default=100.0, help="offered calls/s, in all")
    group.add_argument("--cap-users", type=int, default=8, help="users in all (every process)")
    group.add_argument("--cap-warmup", type=float, default=1.0)
    group.add_argument("--cap-seconds", type=float, default=4.0)
    group.add_argument("--cap-timeout", type=float, default=5.0, help="deadline of one call, s")
    group.add_argument("--cap-seed", type=int, default=1)
    group.add_argument("--cap-out", default=".", help="folder for this process's result file")


_ENVIRONMENT: list[Environment] = []  # this process's, from the init event


def _remember(environment: Environment, **_: Any) -> None:
    _ENVIRONMENT[:] = [environment]


def _open_window(**_: Any) -> None:
    """At spawning complete (every process hears it): the window opens `--cap-warmup`
    later, and the master (or the only process) ends the test once it has closed.

    Not Locust's --run-time: its clock starts before the users do, and on a
    loaded machine a step's users sometimes ran for half the window or less
    before it fired. --run-time stays as the upper bound (bench/capacity.py)."""
    environment = _ENVIRONMENT[0]
    options = environment.parsed_options
    if options is None:
        return
    opens = time.perf_counter() + options.cap_warmup
    RECORDER.window = (opens, opens + options.cap_seconds)

    def at_open() -> None:
        RECORDER.cpu_at_open = time.process_time()

    def at_close() -> None:
        if RECORDER.cpu_at_open is not None:
            RECORDER.cpu_s = time.process_time() - RECORDER.cpu_at_open

    gevent.spawn_later(options.cap_warmup, at_open)
    gevent.spawn_later(options.cap_warmup + options.cap_seconds, at_close)
    if not isinstance(environment.runner, WorkerRunner):
        runner: Any = environment.runner
        gevent.spawn_later(options.cap_warmup + options.cap_seconds + DRAIN_S, runner.quit)


def _dump(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None or RECORDER.sent == 0:
        return  # the master of a --processes run, or a step that never started
    if RECORDER.cpu_s is None and RECORDER.cpu_at_open is not None:
        RECORDER.cpu_s = time.process_time() - RECORDER.cpu_at_open  # stopped early
    out = Path(options.cap_out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"cap-{socket.gethostname()}-{os.getpid()}.json"
    path.write_text(json.dumps(RECORDER.to_json(), separators=(",", ":")) + "\n")


def _grpc_call(kind: str, target_text: str, timeout: float) -> tuple[Callable[[], None], Any]:
    """(one call, the channel to close) for a gRPC step."""
    target = parse_grpc_target(target_text)
    channel = open_channel(target)
    authed = with_auth(channel, target)
    if kind == "health":
        stub = health_pb2_grpc.HealthStub(authed)
        request: Any = health_pb2.HealthCheckRequest(service="")
        return (lambda: stub.Check(request, timeout=timeout)), channel
    dag_stub = pb_grpc.PipelineServiceStub(authed)
    request = pb.GetDagRequest()
    return (lambda: dag_stub.GetDag(request, timeout=timeout)), channel


class HttpStatusError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.code = f"HTTP {status}"


def _http_call(url: str, timeout: float) -> tuple[Callable[[], None], Any]:
    """(one GET /api/dag on a keep-alive connection, the client to close)."""
    audience = console_audience(url)
    tokens = IdTokens(audience) if audience else None
    client = HTTPClient.from_url(
        url, concurrency=1, connection_timeout=timeout, network_timeout=timeout
    )

    def call() -> None:
        headers = {"authorization": tokens.header()} if tokens else {}
        response = client.get("/api/dag", headers=headers)
        response.read()
        if response.status_code != 200:
            raise HttpStatusError(response.status_code)

    return call, client


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):
        return str(exc.code().name)
    return str(getattr(exc, "code", type(exc).__name__))


class ArrivalUser(User):
    """One share of the offered rate: evenly spaced arrivals, latency from intended time."""

    wait_time = constant(0)  # the one task below runs for the whole test

    def on_start(self) -> None:
        options = self.environment.parsed_options
        assert options is not None, "run by the capacity runner, with its options"
        if options.cap_call == "api_dag":
            self._call, self._closer = _http_call(options.cap_target, options.cap_timeout)
        else:
            self._call, self._closer = _grpc_call(
                options.cap_call, options.cap_target, options.cap_timeout
            )
        self._rate = options.cap_rate / max(1, options.cap_users)
        # Distinct streams per user and process, the same on every run of a seed.
        seed = hash((options.cap_seed, os.getpid(), id(self)))
        self._random = random.Random(seed)  # noqa: S311 - arrival times, not secrets

    def on_stop(self) -> None:
        self._closer.close()

    @task
    def arrivals(self) -> None:
        gap = 1.0 / self._rate
        intended = time.perf_counter() + self._random.uniform(0.0, gap)
        while True:
            delay = intended - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            counted = RECORDER.inside(intended)
            if counted:
                RECORDER.sent += 1
                if -delay > LATE_AFTER_S:
                    RECORDER.late += 1
            try:
                self._call()
            except Exception as exc:  # a failed call is a result: count it by code
                if counted:
                    RECORDER.errors[_error_code(exc)] += 1
            else:
                if counted:
                    done = time.perf_counter()
                    RECORDER.histogram.record(int((done - intended) * 1e6))
            intended += gap


hooks.init_command_line_parser.add_listener(_options)
hooks.init.add_listener(_remember)
hooks.spawning_complete.add_listener(_open_window)
hooks.test_stop.add_listener(_dump)
