"""The large-feed case: one big run through the service, beside the library.

A generated feed of ~1,000,000 stop_times rows is run three ways, in turn:

- `library`: in this process with continuous-gtfs directly — read the zip,
  `parse("gtfs_schedule_zip", raw)`, `run_schedule_pipeline` over the steps
  `scan_pipeline` + `resolve_dag` found in pipelines/metro_schedule. That is
  the work itself, with no service around it;
- `grpc`: RunPipeline on the pipeline container (1 MiB chunks);
- `console`: POST /api/runs on the console container (multipart upload,
  which the console streams to the pipeline over gRPC).

`console ÷ library` is what the deployment adds to a run (upload, copies,
hashing, run bookkeeping, the HTTP hop); `grpc ÷ library` splits it. The
median of `repeats` rounds is reported; each round runs all three in the same
order, so page-cache and allocator warmth are shared alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench.targets import GRPC_CHANNEL_OPTIONS
from harness.feeds import generator
from harness.grpc_client import run_requests
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
PIPELINE_DIR = REPO / "pipelines" / "metro_schedule"
CHUNK = 1024 * 1024
RUN_TIMEOUT_S = 900.0


class LargeFeedFailed(RuntimeError):
    """One of the three runs did not complete."""


@dataclass(frozen=True)
class LargeFeedResult:
    rows: int
    feed_bytes: int
    uncompressed_bytes: int
    generate_s: float
    repeats: int
    library_s: float
    grpc_s: float
    console_s: float
    library_samples_s: list[float]
    grpc_samples_s: list[float]
    console_samples_s: list[float]

    @property
    def console_over_library(self) -> float:
        return self.console_s / self.library_s if self.library_s else 0.0

    @property
    def grpc_over_library(self) -> float:
        return self.grpc_s / self.library_s if self.library_s else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "console_over_library": round(self.console_over_library, 3),
            "grpc_over_library": round(self.grpc_over_library, 3),
        }


def _library_runner() -> Callable[[Path], None]:
    """Load the pipeline once (as the service does at start), return one run."""
    from continuous_gtfs import resolve_dag, scan_pipeline
    from continuous_gtfs.parsers import parse
    from continuous_gtfs.pipelines import run_schedule_pipeline
    from continuous_gtfs.scanner import load_inputs_manifest

    steps = resolve_dag(scan_pipeline(PIPELINE_DIR))
    manifest = load_inputs_manifest(PIPELINE_DIR)
    name = next(k for k, spec in manifest.items() if spec["content_kind"] == "gtfs_schedule_zip")

    def run(feed: Path) -> None:
        inputs = {name: parse("gtfs_schedule_zip", feed.read_bytes())}
        result = run_schedule_pipeline(inputs, steps)
        executed = result.execution_result.steps if result.execution_result else []
        failed = [s.name for s in executed if s.status != "success"]
        if failed or result.output_zip is None:
            raise LargeFeedFailed(f"library run failed (steps {failed})")

    return run


def _grpc_run(addr: str, feed: Path) -> None:
    with grpc.insecure_channel(addr, options=GRPC_CHANNEL_OPTIONS) as channel:
        run = pb_grpc.PipelineServiceStub(channel).RunPipeline(
            run_requests(feed, "bench-large", chunk_bytes=CHUNK), timeout=RUN_TIMEOUT_S
        )
    if run.status != pb.RUN_STATUS_COMPLETED:
        raise LargeFeedFailed(f"gRPC run {pb.RunStatus.Name(run.status)}: {run.error}")


def _console_run(url: str, feed: Path) -> None:
    with feed.open("rb") as fh:
        response = httpx.post(
            f"{url}/api/runs",
            files={"feed": ("bench-large.zip", fh, "application/zip")},
            timeout=RUN_TIMEOUT_S,
        )
    if response.status_code != 201 or response.json().get("status") != "completed":
        raise LargeFeedFailed(f"console run: HTTP {response.status_code} {response.text[:500]}")


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return round(time.perf_counter() - t0, 3)


def run(
    rows: int,
    pipeline_addr: str,
    console_url: str,
    repeats: int = 1,
    progress: Callable[[str], None] | None = None,
) -> LargeFeedResult:
    say = progress or (lambda _msg: None)
    library = _library_runner()
    lib_s: list[float] = []
    grpc_s: list[float] = []
    console_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
        feed = Path(tmp) / "feed.zip"
        say(f"generating a {rows:,}-row feed")
        generate_s = _timed(lambda: generator().write_feed(feed, rows))
        with zipfile.ZipFile(feed) as zf:
            uncompressed = sum(i.file_size for i in zf.infolist())
        for i in range(repeats):
            lib_s.append(_timed(lambda: library(feed)))
            say(f"round {i + 1}/{repeats}: library {lib_s[-1]:.2f}s")
            grpc_s.append(_timed(lambda: _grpc_run(pipeline_addr, feed)))
            say(f"round {i + 1}/{repeats}: gRPC RunPipeline {grpc_s[-1]:.2f}s")
            console_s.append(_timed(lambda: _console_run(console_url, feed)))
            say(f"round {i + 1}/{repeats}: console POST /api/runs {console_s[-1]:.2f}s")
        size = feed.stat().st_size
    return LargeFeedResult(
        rows=rows,
        feed_bytes=size,
        uncompressed_bytes=uncompressed,
        generate_s=generate_s,
        repeats=repeats,
        library_s=statistics.median(lib_s),
        grpc_s=statistics.median(grpc_s),
        console_s=statistics.median(console_s),
        library_samples_s=lib_s,
        grpc_samples_s=grpc_s,
        console_samples_s=console_s,
    )
