"""Locust users for the pipeline (gRPC) and the console (HTTP).

Run with the stock command, headless or with the web UI, against the local
environment (`make up`: pipeline on 127.0.0.1:50051, console on :8080)::

    locust -f bench/locustfile.py --headless -u 4 -r 4 -t 30s
    locust -f bench/locustfile.py PipelineUser --pipeline-target 127.0.0.1:50051

or against Cloud Run (TLS, and a Google ID token on every call)::

    locust -f bench/locustfile.py --headless -u 10 -r 2 -t 5m \\
        --pipeline-target https://pipeline-abc-ew.a.run.app \\
        --host https://console-abc-ew.a.run.app

Every gRPC call goes through `LocustInterceptor`, which reports it to Locust's
request stats (name = method name, response time in ms, response size, and a
`GrpcError` carrying the status code on failure) and records its latency in
microseconds into this process's `Recorder`. Console calls are recorded from
Locust's request event. At test stop the recorder is written to
`--bench-hist-dir` (one file per process; `python -m bench` merges them).
Locust's own stats stay the source for throughput and errors; percentiles come
from the microsecond histograms, since Locust rounds to whole milliseconds.

Options (command line, web UI, or the environment variable in brackets):
--pipeline-target [BENCH_PIPELINE_TARGET], --pipeline-tls, --pipeline-audience,
--console-audience, --weight-{get-status,list-steps,get-dag,run-pipeline},
--weight-api-{dag,status} [BENCH_WEIGHT_*], --run-rows, --console-users,
--wait-min/--wait-max, --bench-warmup, --bench-hist-dir. Their defaults and
help are in `_options` below; the web UI shows them in its start form
(Locust's own `--help` does not list a locustfile's options).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import FastHttpUser, TaskSet, User, between, events
from locust.env import Environment
from locust.runners import WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

# gRPC's C core blocks in its own threads; this hands its polling to gevent so
# one Locust process can keep many users' calls in flight. It must run before
# the first channel exists, so here, at import.
grpc_gevent.init_gevent()

from bench.recorder import Recorder  # noqa: E402
from bench.targets import (  # noqa: E402
    GrpcTarget,
    IdTokens,
    console_audience,
    open_channel,
    parse_grpc_target,
    with_auth,
)
from harness.grpc_client import run_requests  # noqa: E402
from pipeline.v1 import pipeline_pb2 as pb  # noqa: E402
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc  # noqa: E402

log = logging.getLogger("bench.locustfile")

_REPO = Path(__file__).resolve().parents[2]

# Locust's event hooks (add_listener, fire) carry no annotations; through Any
# they are called without one type-ignore per use.
hooks: Any = events

#: This process's microsecond histograms; dumped at test stop.
RECORDER = Recorder()

CALL_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 300.0
UPLOAD_CHUNK_BYTES = 256 * 1024

# Task name → (command-line option, default weight). Reads dominate, as on the
# console's dashboard; a run is rare and heavy.
PIPELINE_WEIGHTS = {
    "GetStatus": ("weight_get_status", 5),
    "ListSteps": ("weight_list_steps", 5),
    "GetDag": ("weight_get_dag", 10),
    "RunPipeline": ("weight_run_pipeline", 1),
}
CONSOLE_WEIGHTS = {
    "/api/dag": ("weight_api_dag", 2),
    "/api/status": ("weight_api_status", 1),
}


class GrpcError(Exception):
    """A failed call as Locust records it: the status code first, so its error
    table groups failures by code (`UNAVAILABLE: ...`)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code


class RunFailed(Exception):
    """RunPipeline answered OK but the run itself failed: a failure all the same."""

    code_name = "RUN_FAILED"


def _method_name(full: str) -> str:
    # "/pipeline.v1.PipelineService/GetDag" → "GetDag"
    return full.rsplit("/", 1)[-1]


class LocustInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]  # grpc is untyped
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
):
    """Times every unary response call and reports it to Locust and the recorder."""

    def __init__(self, environment: Environment, recorder: Recorder, target: str) -> None:
        self.environment = environment
        self.recorder = recorder
        self.target = target

    def _observe(self, details: grpc.ClientCallDetails, invoke: Callable[[], Any]) -> Any:
        name = _method_name(details.method)
        started = time.time()
        t0 = time.perf_counter_ns()
        call = invoke()
        exception: Exception | None = None
        response: Any = None
        try:
            response = call.result()
        except grpc.RpcError as err:
            exception = GrpcError(err.code(), err.details() or "")
        elapsed_ns = time.perf_counter_ns() - t0
        failed_run = isinstance(response, pb.Run) and response.status != pb.RUN_STATUS_COMPLETED
        if exception is None and failed_run:
            exception = RunFailed(f"{pb.RunStatus.Name(response.status)}: {response.error}")
        code = None
        if isinstance(exception, GrpcError):
            code = exception.code.name
        elif isinstance(exception, RunFailed):
            code = RunFailed.code_name
        self.recorder.record(name, "grpc", started, elapsed_ns // 1000, code)
        request_hook: Any = self.environment.events.request
        request_hook.fire(
            request_type="grpc",
            name=name,
            response_time=elapsed_ns / 1e6,
            response_length=response.ByteSize() if response is not None else 0,
            response=response,
            context={},
            exception=exception,
            start_time=started,
            url=self.target,
        )
        # The stub calls .result() on what we return: the same outcome again.
        return call

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._observe(details, lambda: continuation(details, request))

    def intercept_stream_unary(
        self, continuation: Any, details: Any, request_iterator: Iterator[Any]
    ) -> Any:
        return self._observe(details, lambda: continuation(details, request_iterator))


def _record_http(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None = None,
    response: Any = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    """Console calls: Locust's HTTP client already measures with perf_counter
    (a float in ms); record it at µs resolution beside the gRPC calls."""
    if request_type == "grpc":
        return  # recorded by the interceptor, from its own clock
    started = start_time if start_time is not None else time.time() - response_time / 1000
    error = None
    if exception is not None:
        status = getattr(response, "status_code", None)
        error = f"HTTP {status}" if status else type(exception).__name__
    RECORDER.record(name, "http", started, round(response_time * 1000), error)


# --- options ----------------------------------------------------------------


def _options(parser: Any) -> None:
    group = parser.add_argument_group("bench (bench/locustfile.py)")
    group.add_argument(
        "--pipeline-target",
        env_var="BENCH_PIPELINE_TARGET",
        default="127.0.0.1:50051",
        help="pipeline gRPC address: host:port, or https://<service>.a.run.app (TLS + ID token)",
    )
    group.add_argument(
        "--pipeline-tls",
        env_var="BENCH_PIPELINE_TLS",
        action="store_true",
        default=False,
        help="TLS to a host:port target (implied by an https:// target)",
    )
    group.add_argument(
        "--pipeline-audience",
        env_var="BENCH_PIPELINE_AUDIENCE",
        default="",
        help="ID token audience for the pipeline (default: the https:// target's origin)",
    )
    group.add_argument(
        "--console-audience",
        env_var="BENCH_CONSOLE_AUDIENCE",
        default="",
        help="ID token audience for the console (default: --host when it is https://)",
    )
    for option, default in (*PIPELINE_WEIGHTS.values(), *CONSOLE_WEIGHTS.values()):
        group.add_argument(
            "--" + option.replace("_", "-"),
            env_var="BENCH_" + option.upper(),
            type=int,
            default=default,
            help=f"task weight (default {default}; 0 disables the task)",
        )
    group.add_argument(
        "--run-rows",
        env_var="BENCH_RUN_ROWS",
        type=int,
        default=2000,
        help="stop_times rows of the generated feed RunPipeline sends",
    )
    group.add_argument(
        "--console-users",
        env_var="BENCH_CONSOLE_USERS",
        type=int,
        default=0,
        help="exact number of ConsoleUser (0: split users by class weight)",
    )
    group.add_argument("--wait-min", env_var="BENCH_WAIT_MIN", type=float, default=0.05)
    group.add_argument("--wait-max", env_var="BENCH_WAIT_MAX", type=float, default=0.2)
    group.add_argument(
        "--bench-warmup",
        env_var="BENCH_WARMUP",
        type=float,
        default=0.0,
        help="seconds after test start excluded from the histograms (Locust stats reset then)",
    )
    group.add_argument(
        "--bench-min-calls",
        env_var="BENCH_MIN_CALLS",
        type=int,
        default=0,
        help="end the test once every weighted task has this many calls after the warm-up "
        "(and --bench-min-seconds have passed); --run-time stays the upper bound. 0: off",
    )
    group.add_argument(
        "--bench-min-seconds",
        env_var="BENCH_MIN_SECONDS",
        type=float,
        default=0.0,
        help="with --bench-min-calls: measure at least this long after the warm-up",
    )
    group.add_argument(
        "--bench-hist-dir",
        env_var="BENCH_HIST_DIR",
        default=str(_REPO / "bench" / "results" / "locust"),
        help="where each process writes its microsecond histograms at test stop",
    )


def _weighted(
    table: dict[str, tuple[str, int]], tasks: dict[str, Callable[[Any], None]], options: Any
) -> list[TaskSet | Callable[..., Any]]:
    # Locust picks uniformly from User.tasks; repeating a task is its weight.
    chosen: list[TaskSet | Callable[..., Any]] = []
    for name, (option, _default) in table.items():
        chosen += [tasks[name]] * max(0, int(getattr(options, option)))
    return chosen


def _configure(environment: Environment) -> None:
    options = environment.parsed_options
    if options is None:  # used as a library, without Locust's command line
        return
    PipelineUser.tasks = _weighted(PIPELINE_WEIGHTS, PIPELINE_TASKS, options)
    ConsoleUser.tasks = _weighted(CONSOLE_WEIGHTS, CONSOLE_TASKS, options)
    wait = between(options.wait_min, max(options.wait_min, options.wait_max))
    PipelineUser.wait_time = wait
    ConsoleUser.wait_time = wait
    ConsoleUser.fixed_count = max(0, options.console_users)


def _on_init(environment: Environment, **_: Any) -> None:
    _configure(environment)


def _on_test_start(environment: Environment, **_: Any) -> None:
    # Again here: the web UI may have changed the options since init.
    _configure(environment)
    warmup = environment.parsed_options.bench_warmup if environment.parsed_options else 0.0
    RECORDER.start(time.time(), warmup)
    if warmup > 0:
        # Locust's own counters (RPS, errors) then cover the same window as the
        # histograms; a call straddling the instant is counted by Locust only.
        gevent.spawn_later(warmup, environment.stats.reset_all)
    if environment.parsed_options is not None:
        global _PROGRESS, _ENOUGH
        if _PROGRESS is not None:
            _PROGRESS.kill(block=False)
        _PROGRESS = gevent.spawn(_report_progress, Path(environment.parsed_options.bench_hist_dir))
        if _ENOUGH is not None:
            _ENOUGH.kill(block=False)
        _ENOUGH = None
        options = environment.parsed_options
        # The master (or the only process) decides; its stats hold every worker's.
        if options.bench_min_calls > 0 and not isinstance(environment.runner, WorkerRunner):
            _ENOUGH = gevent.spawn(
                _quit_when_enough,
                environment,
                expected_entries(environment),
                time.monotonic() + warmup + max(0.0, options.bench_min_seconds),
                options.bench_min_calls,
            )


_PROGRESS: gevent.Greenlet | None = None
_ENOUGH: gevent.Greenlet | None = None
# How often the stop condition is checked: a tenth of a second is far below any
# window worth measuring and costs nothing next to the users' calls.
_ENOUGH_POLL_S = 0.1


def expected_entries(environment: Environment) -> list[tuple[str, str]]:
    """(Locust method, name) of every task the selected user classes will run."""
    options = environment.parsed_options
    entries: list[tuple[str, str]] = []
    for user_class in environment.user_classes:
        if issubclass(user_class, PipelineUser):
            table, method = PIPELINE_WEIGHTS, "grpc"
        elif issubclass(user_class, ConsoleUser):
            table, method = CONSOLE_WEIGHTS, "GET"
        else:
            continue
        for name, (option, default) in table.items():
            if (getattr(options, option) if options else default) > 0:
                entries.append((method, name))
    return entries


def enough_calls(stats: Any, expected: list[tuple[str, str]], min_calls: int) -> bool:
    """Every expected entry has at least `min_calls` requests (failures count:
    a failed call is a result too) in Locust's stats, reset when warm-up ended."""
    return all(
        (entry := stats.entries.get((name, method))) is not None and entry.num_requests >= min_calls
        for method, name in expected
    )


def _quit_when_enough(
    environment: Environment, expected: list[tuple[str, str]], not_before: float, min_calls: int
) -> None:
    """End the test on a count of calls, not on the clock alone.

    A window of a few seconds on a loaded machine can hold no call at all of a
    rare task; waiting for `min_calls` of each makes a short run's content
    certain, and `--run-time` still bounds it when the server never answers."""
    while True:
        gevent.sleep(_ENOUGH_POLL_S)
        if time.monotonic() < not_before:
            continue
        if enough_calls(environment.stats, expected, min_calls):
            log.info("every task has %d calls: ending the test", min_calls)
            options = environment.parsed_options
            if options is not None and options.csv_prefix:
                # Locust rewrites its CSVs every CSV_STATS_INTERVAL_SEC and not at
                # exit: let one rewrite happen, so they hold at least these counts.
                gevent.sleep(CSV_STATS_INTERVAL_SEC + _ENOUGH_POLL_S)
            runner: Any = environment.runner
            runner.quit()
            return


def _report_progress(directory: Path) -> None:
    # Locust flushes its CSVs every 10 s; the runner's progress line wants 1 s.
    while True:
        RECORDER.write_progress(directory)
        gevent.sleep(1.0)


def _on_test_stop(environment: Environment, **_: Any) -> None:
    RECORDER.stop(time.time())
    if _PROGRESS is not None:
        _PROGRESS.kill(block=False)
    if RECORDER.empty or environment.parsed_options is None:
        return  # the master of a distributed run makes no calls itself
    path = RECORDER.dump(Path(environment.parsed_options.bench_hist_dir))
    log.info("microsecond histograms written to %s", path)
    for name, stats in sorted(RECORDER.methods.items()):
        h = stats.histogram
        log.info(
            "%-12s n=%d p50=%dus p90=%dus p99=%dus max=%dus errors=%d",
            name,
            h.count,
            h.value_at(50),
            h.value_at(90),
            h.value_at(99),
            h.max,
            sum(stats.errors.values()),
        )


# --- the pipeline (gRPC) ----------------------------------------------------

_FEEDS: dict[int, bytes] = {}


def _small_feed(rows: int) -> bytes:
    """The RunPipeline payload, generated once per process (the same bytes every time)."""
    if rows not in _FEEDS:
        from harness.feeds import generator

        _FEEDS[rows] = generator().build_feed(rows)
    return _FEEDS[rows]


class PipelineUser(User):
    """One gRPC channel per user (one HTTP/2 connection, like one console instance)."""

    weight = 3
    wait_time = between(0.05, 0.2)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        self.target: GrpcTarget = parse_grpc_target(
            options.pipeline_target if options else "127.0.0.1:50051",
            tls=True if options and options.pipeline_tls else None,
            audience=(options.pipeline_audience or None) if options else None,
        )
        self.run_rows = options.run_rows if options else 2000
        self._channel: grpc.Channel | None = None
        self.stub: pb_grpc.PipelineServiceStub | None = None

    def on_start(self) -> None:
        self._channel = open_channel(self.target)
        timed = grpc.intercept_channel(
            self._channel, LocustInterceptor(self.environment, RECORDER, self.target.addr)
        )
        # Auth outermost: fetching a token is not part of a call's latency.
        self.stub = pb_grpc.PipelineServiceStub(with_auth(timed, self.target))
        if self.run_rows and PipelineUser.tasks.count(PIPELINE_TASKS["RunPipeline"]):
            _small_feed(self.run_rows)  # not inside the first RunPipeline's time

    def on_stop(self) -> None:
        if self._channel is not None:
            self._channel.close()

    def call(self, fn: Callable[[pb_grpc.PipelineServiceStub], Any]) -> None:
        assert self.stub is not None
        # A failure was already reported by the interceptor, with its status code.
        with contextlib.suppress(grpc.RpcError):
            fn(self.stub)


def get_status(user: PipelineUser) -> None:
    user.call(lambda s: s.GetStatus(pb.GetStatusRequest(), timeout=CALL_TIMEOUT_S))


def list_steps(user: PipelineUser) -> None:
    user.call(lambda s: s.ListSteps(pb.ListStepsRequest(), timeout=CALL_TIMEOUT_S))


def get_dag(user: PipelineUser) -> None:
    user.call(lambda s: s.GetDag(pb.GetDagRequest(), timeout=CALL_TIMEOUT_S))


def run_pipeline(user: PipelineUser) -> None:
    feed = _small_feed(user.run_rows)
    user.call(
        lambda s: s.RunPipeline(
            run_requests(feed, "locust.zip", chunk_bytes=UPLOAD_CHUNK_BYTES), timeout=RUN_TIMEOUT_S
        )
    )


PIPELINE_TASKS: dict[str, Callable[[Any], None]] = {
    "GetStatus": get_status,
    "ListSteps": list_steps,
    "GetDag": get_dag,
    "RunPipeline": run_pipeline,
}
PipelineUser.tasks = [get_status] * 5 + [list_steps] * 5 + [get_dag] * 10 + [run_pipeline]  # type: ignore[assignment]


# --- the console (HTTP → gRPC → response) -----------------------------------


class ConsoleUser(FastHttpUser):
    """The roundtrip staff's browsers make: HTTP to the console, gRPC behind it."""

    weight = 1
    wait_time = between(0.05, 0.2)
    host = "http://127.0.0.1:8080"
    # FastHttpUser skips certificate checks by default; Cloud Run's are real.
    insecure = False

    def on_start(self) -> None:
        options = self.environment.parsed_options
        audience = console_audience(
            self.host or "", (options.console_audience or None) if options else None
        )
        self._tokens = IdTokens(audience) if audience else None

    def headers(self) -> dict[str, str]:
        return {"authorization": self._tokens.header()} if self._tokens else {}


def api_dag(user: ConsoleUser) -> None:
    user.client.get("/api/dag", headers=user.headers(), name="/api/dag")


def api_status(user: ConsoleUser) -> None:
    user.client.get("/api/status", headers=user.headers(), name="/api/status")


CONSOLE_TASKS: dict[str, Callable[[Any], None]] = {"/api/dag": api_dag, "/api/status": api_status}
ConsoleUser.tasks = [api_dag] * 2 + [api_status]  # type: ignore[assignment]


# Registered last: every name the listeners use exists by now.
hooks.request.add_listener(_record_http)
hooks.init_command_line_parser.add_listener(_options)
hooks.init.add_listener(_on_init)
hooks.test_start.add_listener(_on_test_start)
hooks.test_stop.add_listener(_on_test_stop)
