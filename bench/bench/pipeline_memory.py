"""Peak memory of the pipeline service on a large feed.

Starts `pipeline-server` (from this checkout) on a free loopback port, streams
a generated feed of N stop_times rows through RunPipeline in 1 MiB chunks, and
reads the server's peak resident set (VmHWM) afterwards. The number that
matters is the multiple of the feed's *uncompressed* size the run added on top
of the idle server, because that is what sizes a Cloud Run instance:

    multiple = (peak RSS - idle RSS) / uncompressed feed bytes

Usage:
    python -m bench.pipeline_memory --rows 1000000 [--max-multiple 10] [--json out.json]
    python -m bench.pipeline_memory --padded 40 [--padded-mib 10]

``--padded N`` measures issue 17's row-7 feed instead: a small generated feed plus
N extra CSV files of ``--padded-mib`` MiB each (harness.feeds.write_padded_feed),
``--shape row7`` (eight-letter fields, as row 7's), ``wide`` (long fields: the least
memory per byte) or ``narrow`` (one-letter fields: the most).
The pipeline's memory model (pipeline_server/memory.py) is fitted to these runs.

Exits 1 when the run does not complete or the multiple exceeds --max-multiple.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness import feeds
from harness.feeds import PADDING_ROWS, write_padded_feed
from harness.grpc_client import run_requests
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from testkit.net import free_port

REPO = Path(__file__).resolve().parents[2]
CHUNK = 1024 * 1024
# The stated bound (README, "Memory"), for feeds of >= 1M stop_times rows: a run
# adds at most this multiple of the feed's uncompressed size to the server's
# resident memory. Measured: ~6x per byte plus ~90 MiB fixed (polars' thread
# pools and buffers on the first run), so small feeds show a larger multiple.
DEFAULT_MAX_MULTIPLE = 10.0


@dataclass
class MemoryReport:
    rows: int
    feed_bytes: int
    uncompressed_bytes: int
    idle_rss_bytes: int
    peak_rss_bytes: int
    multiple: float
    max_multiple: float
    run_status: str
    run_seconds: float
    output_bytes: int

    @property
    def ok(self) -> bool:
        return self.run_status == "RUN_STATUS_COMPLETED" and self.multiple <= self.max_multiple


def _proc_status_bytes(pid: int, field: str) -> int:
    """VmRSS / VmHWM from /proc (kB → bytes); VmHWM is the exact peak."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status (Linux only)")


def measure(
    rows: int,
    max_multiple: float = DEFAULT_MAX_MULTIPLE,
    padded: int = 0,
    padded_bytes: int = 10 * 1024 * 1024,
    shape: str = "row7",
    extra_env: dict[str, str] | None = None,
) -> MemoryReport:
    """``padded`` > 0: the generated feed of ``rows`` plus that many extra files."""
    with tempfile.TemporaryDirectory(prefix="pipeline-memory-") as tmp:
        feed = Path(tmp) / "feed.zip"
        if padded:
            write_padded_feed(feed, padded, padded_bytes, rows, shape)
        else:
            feeds.generator().write_feed(feed, rows)
        with zipfile.ZipFile(feed) as zf:
            uncompressed = sum(i.file_size for i in zf.infolist())
        port = free_port()
        env = {
            **os.environ,
            "PORT": str(port),
            "PIPELINES_DIR": str(REPO / "pipelines"),
            "PIPELINE_NAME": "metro_schedule",
            "PIPELINE_DATA_DIR": tmp,
            **(extra_env or {}),
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "pipeline_server"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                grpc.channel_ready_future(channel).result(timeout=60)
                health = health_pb2_grpc.HealthStub(channel)
                health.Check(health_pb2.HealthCheckRequest(), timeout=10)
                idle = _proc_status_bytes(server.pid, "VmRSS")
                start = time.perf_counter()
                run = pb_grpc.PipelineServiceStub(channel).RunPipeline(
                    run_requests(feed, f"{rows} rows", chunk_bytes=CHUNK), timeout=900
                )
                seconds = time.perf_counter() - start
                peak = _proc_status_bytes(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait(timeout=30)
    return MemoryReport(
        rows=rows,
        feed_bytes=int(run.input_size),
        uncompressed_bytes=uncompressed,
        idle_rss_bytes=idle,
        peak_rss_bytes=peak,
        multiple=round((peak - idle) / uncompressed, 2),
        max_multiple=max_multiple,
        run_status=pb.RunStatus.Name(run.status),
        run_seconds=round(seconds, 2),
        output_bytes=run.output_size,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="stop_times rows (default 1e6)")
    parser.add_argument("--max-multiple", type=float, default=DEFAULT_MAX_MULTIPLE)
    parser.add_argument("--padded", type=int, default=0, help="extra CSV files (row 7's feed)")
    parser.add_argument("--padded-mib", type=int, default=10, help="MiB of each extra file")
    parser.add_argument("--shape", choices=sorted(PADDING_ROWS), default="row7")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    rows = args.rows if not args.padded or args.rows != 1_000_000 else 2_000
    # Admission would refuse the big padded feeds on a small machine: measure the run.
    unbounded = {"PIPELINE_MEMORY_LIMIT_BYTES": str(1 << 40)} if args.padded else None
    report = measure(
        rows,
        args.max_multiple,
        args.padded,
        args.padded_mib * 1024 * 1024,
        args.shape,
        unbounded,
    )
    mib = 1024 * 1024
    print(f"rows                 {report.rows:>12,}")
    print(f"feed (zip)           {report.feed_bytes / mib:>12.1f} MiB")
    print(f"feed (uncompressed)  {report.uncompressed_bytes / mib:>12.1f} MiB")
    print(f"server idle RSS      {report.idle_rss_bytes / mib:>12.1f} MiB")
    print(f"server peak RSS      {report.peak_rss_bytes / mib:>12.1f} MiB")
    print(f"added / uncompressed {report.multiple:>12.2f} x  (limit {report.max_multiple} x)")
    print(f"run                  {report.run_status} in {report.run_seconds} s")
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
