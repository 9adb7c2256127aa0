"""`python -m harness.chaos`: break the running services on purpose and check what clients saw.

Each fault runs against a fresh stack (pipeline + console containers on loopback, the run
store in a host folder) that already holds two finished runs. The fault is injected while a
client is uploading or a run is executing; then the stack is brought back and the harness
checks, through the console like a person would:

- **lost**: an earlier run is no longer listed as completed, or its zip no longer downloads
  with the same bytes;
- **false**: something is reported that did not happen: a run recorded completed while its
  client was told it failed (or the other way round), or a run left ``running`` after the
  lease of its dead instance ran out;
- **recovery**: seconds from the fault until the console's ``/readyz`` answers 200 again
  (for idle clients: until a person's run beside them has completed); more than
  ``RECOVERY_S`` is a stall and fails like a loss.

It prints one table and exits 1 when anything was lost or falsely reported (2 when a stack
could not be started at all). ``--soak MINUTES`` then drives mixed traffic against one
stack and samples each container's resident memory, open descriptors and the run store's
size over time (CSV + SVG chart); it fails when memory still grows after the warm-up.
``--short`` is the bounded selection `make test` runs.

Loopback only, bounded in time: every wait has a deadline.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx

from harness import containers, feeds, images
from harness.grpc_client import run_requests
from harness.tree import REPO_ROOT
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc

# A short lease: a dead instance's run is failed within seconds (the default is 30 s);
# a short idle limit: a silent upload stream is ended within seconds (default 30 s).
LEASE_S = 3
IDLE_S = 5
PIPELINE_ENV = {
    "PIPELINE_RUN_LEASE_SECONDS": str(LEASE_S),
    "PIPELINE_STREAM_IDLE_SECONDS": str(IDLE_S),
}
CALL_S = 15.0
RECOVERY_S = 60.0
# stop_times rows of a run that takes a few seconds here.
LONG_RUN_ROWS = 3_000_000
# Soak: memory may settle during the first part; after it, growth beyond this fails.
WARMUP_FRACTION = 0.3
MAX_GROWTH_AFTER_WARMUP = 0.10


def say(message: str) -> None:
    print(f"chaos: {message}", file=sys.stderr, flush=True)  # noqa: T201


@dataclasses.dataclass
class Outcome:
    fault: str
    clients_saw: str
    recovery_s: float | None = None
    lost: list[str] = dataclasses.field(default_factory=list)
    false: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        # Recovery slower than RECOVERY_S is a stall: the service did not cope.
        recovered = self.recovery_s is not None and self.recovery_s <= RECOVERY_S
        return not self.lost and not self.false and recovered


@dataclasses.dataclass(frozen=True)
class FinishedRun:
    run_id: str
    label: str
    sha256: str


# --- one stack under test -------------------------------------------------------------


class Scene:
    """A pipeline and a console sharing nothing with other scenes; the run store in
    ``workdir/store`` (a host folder, so it outlives the pipeline container)."""

    def __init__(self, build: images.Build, workdir: Path, name: str) -> None:
        self.build, self.workdir, self.name = build, workdir, name
        self.stack = f"chaos-{name}-{containers.new_stack_id()[:4]}"
        self.store = workdir / "store"
        self.pipeline = containers.start_pipeline(
            build.ref("pipeline"), self.stack, env=PIPELINE_ENV, data_dir=self.store
        )
        self.console = containers.start_console(
            build.ref("console"), self.stack, self.pipeline.addr
        )
        self.earlier: list[FinishedRun] = []

    @property
    def api(self) -> str:
        return self.console.url

    def remove(self) -> None:
        self.console.remove()
        self.pipeline.remove()

    # What a person does through the console.

    def run(self, label: str, feed: bytes) -> httpx.Response:
        return httpx.post(
            f"{self.api}/api/runs", files={"feed": (label, feed, "application/zip")}, timeout=180
        )

    def seed(self) -> None:
        for i in range(2):
            response = self.run(f"earlier-{i}.zip", feeds.feed())
            body = response.json()
            if response.status_code != 201 or body.get("status") != "completed":
                raise RuntimeError(
                    f"seeding run failed: {response.status_code} {response.text[:300]}"
                )
            self.earlier.append(
                FinishedRun(body["run_id"], body["label"], self.download_sha(body["run_id"]) or "")
            )

    def download_sha(self, run_id: str) -> str | None:
        try:
            response = httpx.get(f"{self.api}/api/runs/{run_id}/output", timeout=CALL_S)
        except httpx.HTTPError:
            return None
        return hashlib.sha256(response.content).hexdigest() if response.status_code == 200 else None

    def listed(self) -> dict[str, dict[str, object]]:
        response = httpx.get(f"{self.api}/api/runs", params={"page_size": 100}, timeout=CALL_S)
        response.raise_for_status()
        return {str(r["run_id"]): r for r in response.json()["runs"]}

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.api}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, since: float) -> float | None:
        deadline = since + RECOVERY_S
        while time.monotonic() < deadline:
            if self.ready():
                return time.monotonic() - since
            time.sleep(0.25)
        return None

    def live_runs(self) -> int:
        with grpc.insecure_channel(self.pipeline.addr) as channel:
            status = pb_grpc.PipelineServiceStub(channel).GetStatus(
                pb.GetStatusRequest(), timeout=5
            )
        return int(status.active_runs_all_instances)

    def wait_running(self, pending: concurrent.futures.Future[object], within: float = 60) -> None:
        """Until a run is recorded as running (its row and lease exist)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if pending.done():
                raise RuntimeError("the run ended before the fault could be injected")
            with contextlib.suppress(grpc.RpcError):
                if self.live_runs() >= 1:
                    return
            time.sleep(0.05)
        raise RuntimeError("the run was never recorded as running")

    # What the checks read.

    def check_earlier(self, outcome: Outcome) -> None:
        try:
            listed = self.listed()
        except httpx.HTTPError as exc:
            outcome.lost.append(f"history unreadable: {exc}")
            return
        for run in self.earlier:
            row = listed.get(run.run_id)
            if row is None or row["status"] != "completed":
                outcome.lost.append(f"{run.label} no longer listed completed")
            elif self.download_sha(run.run_id) != run.sha256:
                outcome.lost.append(f"{run.label}'s zip no longer downloads the same")

    def check_label(self, outcome: Outcome, label: str, client_ok: bool) -> None:
        """The run labelled ``label`` is reported as its client was told, and not stuck."""
        deadline = time.monotonic() + LEASE_S * 4 + 10
        while True:
            rows = [r for r in self.listed().values() if r["label"] == label]
            if not any(r["status"] == "running" for r in rows) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for row in rows:
            if row["status"] == "running":
                outcome.false.append(f"{label} still running after its instance died")
            elif row["status"] == "completed" and not client_ok:
                outcome.false.append(f"{label} recorded completed; its client was told it failed")
            elif row["status"] != "completed" and client_ok:
                outcome.false.append(f"{label} recorded {row['status']}; its client saw completed")
        if client_ok and not rows:
            outcome.false.append(f"{label}: its client saw completed, the history has no such run")


def _answer(response: httpx.Response | BaseException) -> tuple[str, bool]:
    """(what the client saw, whether it was told the run completed)."""
    if isinstance(response, BaseException):
        return f"connection error ({type(response).__name__})", False
    kind = response.headers.get("content-type", "")
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {kind} (not the JSON error shape)", False
    if response.status_code == 201:
        return f"201 run {body.get('status')}", body.get("status") == "completed"
    code = (body.get("error") or {}).get("code", "?")
    return f"{response.status_code} {code}", False


def _in_background(call: Callable[[], httpx.Response]) -> concurrent.futures.Future[object]:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future: concurrent.futures.Future[object] = pool.submit(call)
    pool.shutdown(wait=False)
    return future


def _result(future: concurrent.futures.Future[object]) -> httpx.Response | BaseException:
    try:
        result = future.result(timeout=180)
    except BaseException as exc:  # what the client saw is the point
        return exc
    assert isinstance(result, httpx.Response)
    return result


# --- faults ---------------------------------------------------------------------------

SceneFault = Callable[[Scene], Outcome]


def _mid_run(service: str, signal: str) -> SceneFault:
    """The fault: ``signal`` ("kill" or "SIGTERM") to ``service`` while a long run executes.

    The container is then started again (a crashed or scaled-in instance replaced)
    and the run must be reported as its client was told. With the console gone, the
    pipeline may finish or cancel the orphaned run: the check waits for that first.
    """

    def fault(scene: Scene) -> Outcome:
        box = scene.pipeline if service == "pipeline" else scene.console
        label = f"{service}-{signal.lower()}-mid-run.zip"
        pending = _in_background(lambda: scene.run(label, feeds.feed(LONG_RUN_ROWS)))
        scene.wait_running(pending)
        fault_at = time.monotonic()
        if signal == "kill":
            box.kill()
        else:
            box.stop(timeout=10)  # Cloud Run's scale-in: SIGTERM, 10 s, SIGKILL
        stopped_in = time.monotonic() - fault_at
        saw, client_ok = _answer(_result(pending))
        box.start_again()
        name = f"{'kill -9' if signal == 'kill' else 'SIGTERM'} {service} mid-run"
        outcome = Outcome(name, saw, scene.wait_ready(fault_at))
        if signal != "kill":
            outcome.notes.append(f"exited {stopped_in:.1f}s after SIGTERM")
        if service == "console":
            _wait_no_live_run(scene)
        scene.check_label(outcome, label, client_ok)
        scene.check_earlier(outcome)
        return outcome

    return fault


def fault_pipeline_killed_mid_upload(scene: Scene) -> Outcome:
    """A direct gRPC client streaming slowly; the pipeline dies while it receives."""
    label = "killed-mid-upload.zip"
    feed = feeds.feed(200_000)

    def slow_chunks() -> Iterator[pb.RunPipelineRequest]:
        for i, message in enumerate(run_requests(feed, label=label, chunk_bytes=64 * 1024)):
            if i:
                time.sleep(0.1)
            yield message

    def upload() -> object:
        with grpc.insecure_channel(scene.pipeline.addr) as channel:
            return pb_grpc.PipelineServiceStub(channel).RunPipeline(slow_chunks(), timeout=120)

    pool = concurrent.futures.ThreadPoolExecutor(1)
    pending = pool.submit(upload)
    time.sleep(0.5)
    scene.pipeline.kill()
    fault_at = time.monotonic()
    try:
        pending.result(timeout=60)
        saw, client_ok = "OK", True
    except grpc.RpcError as exc:
        saw, client_ok = f"gRPC {exc.code().name}", False
    pool.shutdown(wait=False)
    scene.pipeline.start_again()
    outcome = Outcome("kill -9 pipeline mid-upload", saw, scene.wait_ready(fault_at))
    scene.check_label(outcome, label, client_ok)
    scene.check_earlier(outcome)
    leftovers = list((scene.store / "spool").rglob("*.upload"))
    if leftovers:
        outcome.notes.append(f"{len(leftovers)} spooled uploads left")
    return outcome


def _wait_no_live_run(scene: Scene, within: float = 60) -> None:
    # The pipeline may finish (or cancel) the orphaned run after the console went away.
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(grpc.RpcError):
            if scene.live_runs() == 0:
                return
        time.sleep(0.5)


def fault_idle_streams(scene: Scene) -> Outcome:
    """16 RunPipeline streams that never send a message, while a person uses the console.

    Reads must keep answering at once. Runs may be refused (429) while the idle
    streams hold the upload admissions, but only until the pipeline ends them
    (PIPELINE_STREAM_IDLE_SECONDS): recovery is until a person's retried run completes.
    """
    stop = threading.Event()
    channel = grpc.insecure_channel(scene.pipeline.addr)
    stub = pb_grpc.PipelineServiceStub(channel)

    def nothing() -> Iterator[pb.RunPipelineRequest]:
        # Blocks until the fault ends, having sent nothing: an idle stream.
        stop.wait(120)
        yield from ()

    calls = [stub.RunPipeline.future(nothing(), timeout=120) for _ in range(16)]
    label = "beside-idle-streams.zip"
    slowest_read, answers = 0.0, []
    try:
        time.sleep(1.0)
        fault_at = time.monotonic()
        client_ok = False
        while not client_ok and time.monotonic() - fault_at < RECOVERY_S:
            started = time.monotonic()
            ready = scene.ready()
            slowest_read = max(slowest_read, time.monotonic() - started)
            saw, client_ok = _answer(
                _result(_in_background(lambda: scene.run(label, feeds.feed())))
            )
            answers.append(saw)
            if not client_ok:
                time.sleep(1.0)  # a person retries
        took = time.monotonic() - fault_at if client_ok else None
        seen = sorted(set(answers), key=answers.index)
        outcome = Outcome("16 idle RunPipeline streams", "runs: " + " then ".join(seen), took)
        outcome.notes.append(f"slowest /readyz {slowest_read * 1000:.0f} ms")
        if not ready:
            outcome.notes.append("/readyz failed beside idle streams")
    finally:
        stop.set()
        for call in calls:
            call.cancel()
        channel.close()
    scene.check_label(outcome, label, client_ok)
    scene.check_earlier(outcome)
    return outcome


def fault_full_data_disk(build: images.Build, workdir: Path) -> Outcome:
    """The run store's disk is full: an upload bigger than the free space."""
    disk = workdir / "store"
    disk.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], check=True)
    scene = None
    try:
        scene = Scene(build, workdir, "disk")
        scene.seed()
        label = "too-big-for-the-disk.zip"
        fault_at = time.monotonic()
        saw, client_ok = _answer(_result(_in_background(lambda: scene.run(label, _filler(30)))))
        outcome = Outcome("full data disk", saw, scene.wait_ready(fault_at))
        if "not the JSON error shape" in saw or saw.startswith(("500", "502")):
            outcome.notes.append(
                "an unclean answer: a full disk is the caller's RESOURCE_EXHAUSTED"
            )
        scene.check_label(outcome, label, client_ok)
        scene.check_earlier(outcome)
        after = scene.run("after-the-disk-filled.zip", feeds.feed())
        if after.status_code != 201:
            outcome.notes.append(f"a small run afterwards: {after.status_code}")
        return outcome
    finally:
        if scene is not None:
            scene.remove()
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _filler(mib: int) -> bytes:
    """A zip of ``mib`` MiB of incompressible bytes (stored, not deflated)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("stops.txt", os.urandom(mib * 1024 * 1024))
    return buffer.getvalue()


FAULTS: dict[str, SceneFault] = {
    "pipeline-kill-mid-run": _mid_run("pipeline", "kill"),
    "pipeline-sigterm-mid-run": _mid_run("pipeline", "SIGTERM"),
    "pipeline-kill-mid-upload": fault_pipeline_killed_mid_upload,
    "console-kill-mid-run": _mid_run("console", "kill"),
    "console-sigterm-mid-run": _mid_run("console", "SIGTERM"),
    "idle-streams": fault_idle_streams,
}
SHORT = ["pipeline-kill-mid-run", "pipeline-kill-mid-upload", "idle-streams"]


# --- soak -------------------------------------------------------------------------------


@dataclasses.dataclass
class Sample:
    t: float
    pipeline_rss_mib: float
    console_rss_mib: float
    pipeline_fds: int
    console_fds: int
    store_mib: float


def _proc(box: containers.ServiceContainer) -> tuple[float, int]:
    """(resident MiB, open descriptors) of the container's main process, read on the host."""
    wrapped = box.container.get_wrapped_container()
    wrapped.reload()
    pid = wrapped.attrs["State"]["Pid"]
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def _size_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / (1024 * 1024)


def soak(scene: Scene, seconds: float, every: float, out: Path) -> tuple[bool, str]:
    """Mixed traffic for ``seconds``; memory must not grow after the warm-up."""
    stop = threading.Event()
    errors: list[str] = []
    counts = {"requests": 0}

    def traffic(kind: int) -> None:
        with httpx.Client(base_url=scene.api, timeout=CALL_S) as client:
            while not stop.is_set():
                try:
                    if kind == 0:
                        response = client.post(
                            "/api/runs",
                            files={"feed": ("soak.zip", feeds.feed(), "application/zip")},
                        )
                    else:
                        response = client.get(("/api/status", "/api/dag", "/api/runs")[kind % 3])
                    counts["requests"] += 1
                    if response.status_code >= 500:
                        errors.append(f"{response.request.url.path} {response.status_code}")
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)

    threads = [threading.Thread(target=traffic, args=(k,), daemon=True) for k in range(4)]
    for thread in threads:
        thread.start()
    samples: list[Sample] = []
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            p_rss, p_fds = _proc(scene.pipeline)
            c_rss, c_fds = _proc(scene.console)
            samples.append(Sample(elapsed, p_rss, c_rss, p_fds, c_fds, _size_mib(scene.store)))
            time.sleep(every)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=CALL_S + 5)
    _write_soak(out, samples)
    verdicts = []
    ok = not errors
    for name in ("pipeline_rss_mib", "console_rss_mib"):
        growth = _growth_after_warmup([(s.t, getattr(s, name)) for s in samples])
        verdicts.append(f"{name.split('_')[0]} RSS {growth:+.1%} after warm-up")
        ok = ok and growth <= MAX_GROWTH_AFTER_WARMUP
    fds = [s.pipeline_fds for s in samples]
    summary = (
        f"{counts['requests']} requests, {len(errors)} errors; "
        + "; ".join(verdicts)
        + f"; pipeline fds {min(fds)}-{max(fds)}"
    )
    return ok, summary


def _growth_after_warmup(points: list[tuple[float, float]]) -> float:
    """Least-squares growth over the post-warm-up window, as a fraction of its mean."""
    if len(points) < 4:
        return 0.0
    tail = points[int(len(points) * WARMUP_FRACTION) :]
    n = len(tail)
    mean_t = sum(t for t, _ in tail) / n
    mean_v = sum(v for _, v in tail) / n
    var = sum((t - mean_t) ** 2 for t, _ in tail)
    if var == 0 or mean_v == 0:
        return 0.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in tail) / var
    return slope * (tail[-1][0] - tail[0][0]) / mean_v


def _write_soak(out: Path, samples: list[Sample]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    fields = [f.name for f in dataclasses.fields(Sample)]
    lines = [",".join(fields)] + [",".join(f"{getattr(s, f):.2f}" for f in fields) for s in samples]
    (out / "soak.csv").write_text("\n".join(lines) + "\n")
    (out / "soak.svg").write_text(_svg(samples))


def _svg(samples: list[Sample]) -> str:
    """RSS of both services and the store's size over time, one small SVG."""
    width, height, pad = 720, 320, 40
    series = {
        "pipeline RSS MiB": ([s.pipeline_rss_mib for s in samples], "#1f77b4"),
        "console RSS MiB": ([s.console_rss_mib for s in samples], "#ff7f0e"),
        "store MiB": ([s.store_mib for s in samples], "#2ca02c"),
    }
    t_max = max((s.t for s in samples), default=1) or 1
    v_max = max((max(v, default=0) for v, _ in series.values()), default=1) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="20" font-size="13">soak: memory and store size over '
        f"{t_max:.0f} s (max {v_max:.0f} MiB)</text>",
    ]
    for i, (name, (values, colour)) in enumerate(series.items()):
        points = " ".join(
            f"{pad + s.t / t_max * (width - 2 * pad):.1f},"
            f"{height - pad - v / v_max * (height - 2 * pad):.1f}"
            for s, v in zip(samples, values, strict=True)
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        x, y = pad + i * 200, height - 10
        parts.append(f'<text x="{x}" y="{y}" font-size="12" fill="{colour}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


# --- the command ----------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> str:
    rows = [["fault", "clients saw", "recovery", "lost", "false report", "notes"]]
    for o in outcomes:
        rows.append(
            [
                o.fault,
                o.clients_saw,
                f"{o.recovery_s:.1f}s" if o.recovery_s is not None else "never",
                "; ".join(o.lost) or "-",
                "; ".join(o.false) or "-",
                "; ".join(o.notes) or "-",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def run_faults(build: images.Build, names: list[str], workdir: Path, disk: bool) -> list[Outcome]:
    outcomes = []
    for name in names:
        say(f"{name} …")
        scene = Scene(build, workdir / name, name)
        try:
            scene.seed()
            outcomes.append(FAULTS[name](scene))
        except RuntimeError as exc:
            outcomes.append(Outcome(name, f"could not inject: {exc}"))
        finally:
            scene.remove()
    if disk:
        if os.geteuid() == 0:
            say("full-data-disk …")
            outcomes.append(fault_full_data_disk(build, workdir / "full-disk"))
        else:
            say("full-data-disk skipped: mounting a small tmpfs needs root")
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--short", action="store_true", help=f"only {', '.join(SHORT)} and a 20 s soak"
    )
    parser.add_argument("--faults", nargs="*", choices=sorted(FAULTS), help="these faults only")
    parser.add_argument("--no-disk", action="store_true", help="skip the full-disk fault")
    parser.add_argument(
        "--soak",
        type=float,
        default=None,
        metavar="MINUTES",
        help="soak length (default 2; --short: 20 s)",
    )
    parser.add_argument("--sample-every", type=float, default=None, metavar="S")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the table, CSV and chart"
    )
    args = parser.parse_args(argv)

    names = args.faults if args.faults is not None else (SHORT if args.short else list(FAULTS))
    soak_s = args.soak * 60 if args.soak is not None else (20.0 if args.short else 120.0)
    every = args.sample_every or (2.0 if soak_s <= 120 else 10.0)
    out = args.out or Path(tempfile.mkdtemp(prefix="chaos-"))
    workdir = Path(tempfile.mkdtemp(prefix="chaos-work-", dir=REPO_ROOT / ".cache"))
    try:
        build = images.build(allow_dirty=True)
        outcomes = run_faults(build, names, workdir, disk=not args.short and not args.no_disk)
        soak_ok, soak_summary = True, "skipped"
        if soak_s > 0:
            say(f"soak {soak_s:.0f}s …")
            scene = Scene(build, workdir / "soak", "soak")
            try:
                soak_ok, soak_summary = soak(scene, soak_s, every, out)
            finally:
                scene.remove()
    except containers.ContainerFailed as exc:
        say(f"a stack could not be started: {exc}")
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    report = table(outcomes)
    print(report)  # noqa: T201
    print(f"soak: {'ok' if soak_ok else 'FAILED'}: {soak_summary}")  # noqa: T201
    out.mkdir(parents=True, exist_ok=True)
    (out / "chaos.txt").write_text(report + f"\nsoak: {soak_summary}\n")
    (out / "chaos.json").write_text(
        json.dumps(
            {"faults": [dataclasses.asdict(o) for o in outcomes], "soak": soak_summary}, indent=2
        )
    )
    say(f"written to {out}")
    return 0 if all(o.ok for o in outcomes) and soak_ok else 1


if __name__ == "__main__":
    sys.exit(main())
