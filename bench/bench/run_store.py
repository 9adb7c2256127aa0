"""Run store: GetRun and ListRuns with 10,000 runs in the store, beside a nearly empty one.

Two host folders are seeded as a pipeline's PIPELINE_DATA_DIR (``runs.sqlite3``
and ``runs/``), straight through SQLAlchemy with the service's own tables
(``pipeline_server.store.schema``, migrated by ``database.migrate``) and rows
built from ``pb.Run`` messages by ``records.run_row`` / ``step_rows``, the code
the service writes with:

- ``large``: ``runs`` (10,000) finished runs shaped like metro_schedule's (its
  five steps, row counts per file, the steps' findings with their context, log
  lines, an error on the failed ones; ~75 % completed, the rest failed at the
  stop-hierarchy check or at merge_stops with the later steps skipped), started
  one after another over the last week;
- ``small``: ``small_runs`` (40) of those same runs: the large store's first
  page and its page 250, so both stores answer every ListRuns below with the
  same 20 runs (field for field) and the ratio is the store's size and nothing else.

No zips: GetRun and ListRuns never read one. Every run has ``output_key`` NULL
except the newest completed run, which gets a real tiny zip (DownloadOutput
works on it). Retention is switched off in the measured pipelines
(PIPELINE_RETENTION_RUNS=0, PIPELINE_RETENTION_DAYS=0) so upkeep never deletes
what was seeded.

Then one pipeline container per store (the already-built image, each on its own
folder, both up at once) and plain loops like the floor's, one call at a time on
one channel (warm-up, then ≤ calls and ≤ seconds), each timed in µs:

- ``GetRun``: a run id drawn at random from the store's runs (fixed seed);
- ``ListRuns.first_page``: ``page_size`` 20, no token (newest first);
- ``ListRuns.deep_page``: ``page_size`` 20 from the token of page 250 (the
  middle of 10,000 runs), found by following ``next_page_token`` from the first
  page; on the small store page 2, its last full page.

Each loop alternates between the two stores call by call (``paired_loop``), so
a drift in the machine's load hits both alike. The ratio reported per call is
large p50 ÷ small p50.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import random
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa

from bench import floor
from bench.histogram import Histogram
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from pipeline_server.store import records
from pipeline_server.store.blobs import open_blob_store
from pipeline_server.store.database import create_engine, migrate, parse_url
from pipeline_server.store.run_store import output_key
from pipeline_server.store.schema import runs as runs_table
from pipeline_server.store.schema import step_results

RUNS = 10_000
SMALL_RUNS = 40
PAGE_SIZE = 20
DEEP_PAGE = 250
#: Per call and store.
MAX_CALLS = 2000
MAX_SECONDS = 3.0
INSERT_BATCH = 2_000
CALL_TIMEOUT_S = 10.0
# Unrecorded calls before each loop (a ListRuns page takes ~10 ms here: fewer than the floor's).
WARMUP_CALLS = 20
SEED = 2
#: Report order, and the names the ratios carry.
CALLS = ("GetRun", "ListRuns.first_page", "ListRuns.deep_page")
#: The measured pipelines keep every seeded run.
PIPELINE_ENV = {"PIPELINE_RETENTION_RUNS": "0", "PIPELINE_RETENTION_DAYS": "0"}
SQLITE_FILE = "runs.sqlite3"
BLOB_DIR = "runs"
STEPS = (
    "init",
    "update_feed_info",
    "merge_stops",
    "remove_unused_stops",
    "validate_stop_hierarchy",
)
VERSION = "5eed" * 10  # a commit-like 40-hex version
WEEK_US = 7 * 86_400_000_000


class StorePhaseFailed(RuntimeError):
    """A seeded store did not answer as seeded; the message says how."""


# --- seeding -------------------------------------------------------------------


def _hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _step(name: str, status: int, ms: float) -> pb.StepResult:
    return pb.StepResult(step_name=name, status=status, duration_ms=ms)  # type: ignore[arg-type]


def _counts(step: pb.StepResult, counts: dict[str, tuple[int, int]]) -> None:
    for file, (before, after) in sorted(counts.items()):
        step.row_counts.add(file=file, rows_before=before, rows_after=after)


def make_run(rng: random.Random, started_us: int) -> pb.Run:
    """One finished metro_schedule-like run: its steps, row counts, findings and log lines."""
    ok, failed, skipped = pb.STEP_STATUS_SUCCESS, pb.STEP_STATUS_FAILED, pb.STEP_STATUS_SKIPPED
    stop_times = rng.randrange(2_000, 1_200_000)
    stops = rng.randrange(300, 6_000)
    pathways, transfers = stops // 2, rng.randrange(0, 400)
    merged, unused = rng.randrange(0, 12), rng.randrange(0, 30)
    scale = stop_times / 100_000  # the work grows with the feed
    outcome = rng.random()
    fails_at = (
        "" if outcome < 0.75 else "validate_stop_hierarchy" if outcome < 0.93 else "merge_stops"
    )

    steps = []
    init = _step("init", ok, rng.uniform(0.02, 0.2))
    init.messages.append("seeded ctx.output from schedule: 9 files")
    steps.append(init)
    feed_info = _step("update_feed_info", ok, rng.uniform(0.2, 2.0))
    _counts(feed_info, {"feed_info.txt": (1, 1)})
    feed_info.messages.append("feed_publisher_name set to 'Metro Transit Data'")
    steps.append(feed_info)

    merge = _step("merge_stops", ok, rng.uniform(20, 60) * (1 + scale / 10))
    if fails_at == "merge_stops":
        merge.status = failed
        merge.error = f"stops.txt: column stop_lat holds {rng.randrange(1, 9)} non-numeric value(s)"
        merge.messages.append(merge.error)
        steps.append(merge)
        steps += [_step(name, skipped, 0.0) for name in STEPS[3:]]
    else:
        _counts(
            merge,
            {
                "pathways.txt": (pathways, pathways),
                "stop_times.txt": (stop_times, stop_times),
                "stops.txt": (stops, stops - merged),
                "transfers.txt": (transfers, transfers),
            },
        )
        finding = merge.findings.add(
            code="stops_merged",
            severity="info",
            message=f"merged {merged} duplicate stop(s) into {merged} survivor(s) within 25 m; "
            f"{rng.randrange(0, 120)} look-alike stop(s) kept distinct",
            occurrence_count=1,
        )
        finding.context.update(
            {
                "merged": str(merged),
                "survivors": str(merged),
                "distance_m": "25",
                "kept_distinct": str(rng.randrange(0, 120)),
                "transfers_deduplicated": "0",
                "pathway_loops_dropped": "0",
                "rewritten:stop_times.txt.stop_id": str(merged * 5),
                "rewritten:stops.txt.parent_station": str(merged // 2),
                "rewritten:transfers.txt.from_stop_id": str(merged // 3),
                "rewritten:transfers.txt.to_stop_id": "0",
                "rewritten:pathways.txt.from_stop_id": "0",
                "rewritten:pathways.txt.to_stop_id": str(merged // 4),
            }
        )
        merge.messages.append(f"read stops.txt: {stops} rows")
        steps.append(merge)

        kept = stops - merged - unused
        remove = _step("remove_unused_stops", ok, rng.uniform(4, 12) * (1 + scale / 10))
        _counts(
            remove,
            {
                "pathways.txt": (pathways, pathways - unused // 3),
                "stops.txt": (stops - merged, kept),
                "transfers.txt": (transfers, transfers - unused // 6),
            },
        )
        finding = remove.findings.add(
            code="unused_stops_removed",
            severity="info",
            message=f"removed {unused} unused stop(s) of {stops - merged}",
            occurrence_count=1,
        )
        finding.context.update(
            {
                "kept": str(kept),
                "removed": str(unused),
                **{f"removed_location_type_{t}": str(unused // 5) for t in range(5)},
                "removed_location_type_unknown": "0",
                "dropped:pathways.txt": str(unused // 3),
                "dropped:transfers.txt": str(unused // 6),
            }
        )
        steps.append(remove)

        check = _step("validate_stop_hierarchy", ok, rng.uniform(1.5, 5) * (1 + scale / 10))
        _counts(check, {"stops.txt": (kept, kept)})
        if fails_at:
            check.status = failed
            violations = []
            for k in range(rng.randrange(1, 4)):
                stop, parent = f"RED{k:02d}-P0", f"RED{k + 1:02d}-P0"
                text = (
                    f"stop {stop} (location_type 0, parent_station {parent} (location_type 0)): "
                    "the parent_station of a stop/platform (0), entrance/exit (2) or generic "
                    "node (3) must be a station (1)"
                )
                violations.append(text)
                found = check.findings.add(
                    code="stop_hierarchy_violation",
                    severity="error",
                    message=text,
                    occurrence_count=1,
                )
                found.context.update(
                    {
                        "rule": "parent_must_be_station",
                        "stop_id": stop,
                        "location_type": "0",
                        "parent_station": parent,
                        "parent_location_type": "0",
                    }
                )
            check.error = (
                f"{len(violations)} stop hierarchy violation(s) in stops.txt: "
                + "; ".join(violations)
            )
        else:
            check.messages.append(f"checked {kept} stops: hierarchy valid")
        steps.append(check)

    duration_ms = sum(s.duration_ms for s in steps) + rng.uniform(15, 40)
    run = pb.Run(
        run_id=_hex(rng, 128),
        status=pb.RUN_STATUS_FAILED if fails_at else pb.RUN_STATUS_COMPLETED,
        label=f"metro-{rng.randrange(1, 10_000):04d}.zip",
        version=VERSION,
        step_results=steps,
        input_size=int(stop_times * 9 + stops * 60),
        input_sha256=_hex(rng, 256),
        duration_ms=duration_ms,
        started_at=records.timestamp(started_us),
        finished_at=records.timestamp(started_us + int(duration_ms * 1000)),
    )
    failing = next((s for s in steps if s.status == failed), None)
    if failing is not None:
        run.error = f"step {failing.step_name} failed: {failing.error}"
    else:
        run.output_size = int(run.input_size * 0.98)
        run.output_sha256 = _hex(rng, 256)
    return run


@dataclass(frozen=True)
class Seeded:
    """A data dir holding ``runs`` finished runs, and what making it cost."""

    data_dir: Path
    runs: int
    step_rows: int
    completed: int
    seconds: float  # all of it: migrate, build, insert, checkpoint
    migrate_s: float
    build_s: float  # pb.Run messages and their rows (records.run_row / step_rows)
    insert_s: float
    db_bytes: int
    run_ids: tuple[str, ...]  # oldest first (insertion order)
    download_run_id: str  # the one run with an output zip ("" if none completed)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["run_ids"], out["data_dir"]
        out["runs_per_s"] = round(self.runs / self.seconds) if self.seconds else 0
        for key in ("seconds", "migrate_s", "build_s", "insert_s"):
            out[key] = round(out[key], 3)
        return out


def _tiny_zip(run_id: str) -> bytes:
    buf = io.BytesIO()
    # A fixed entry time: writestr with a bare name stamps the current time, so two
    # stores seeded a second apart would hold different bytes for the same run.
    entry = zipfile.ZipInfo("feed_info.txt", date_time=(2026, 1, 1, 0, 0, 0))
    entry.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(entry, f"feed_publisher_name,feed_version\nMetro Transit Data,{run_id}\n")
    return buf.getvalue()


def _hand_over(data_dir: Path) -> None:
    """Everything seeded, writable by the image's user (uid 10001), as the harness
    does for the folder itself (shared_data_dir)."""
    from harness.containers import SERVICE_UID

    for path in [data_dir, *data_dir.rglob("*")]:
        if os.geteuid() == 0:
            os.chown(path, SERVICE_UID, SERVICE_UID)
        else:
            path.chmod(0o777 if path.is_dir() else 0o666)


def small_store_indices(large: int, small: int) -> list[int]:
    """Which runs of the large store the small one holds (indices, oldest first).

    The small store's first page is the large store's first page and its deep page
    (its last full one) is the large store's deep page, run for run, so both answer
    ListRuns with the same 20 runs and the ratio of the two is the store's size alone.
    The rest (none with 40) are the large store's runs next to those.
    """
    if small < 2 * PAGE_SIZE or small > large:
        raise ValueError(f"the small store needs {2 * PAGE_SIZE}..{large:,} runs, not {small:,}")
    page_s, page_l = deep_page_number(small), deep_page_number(large)
    newest_first = []
    for j in range(small):
        if j < (page_s - 1) * PAGE_SIZE:
            pos = j
        elif j < page_s * PAGE_SIZE:
            pos = (page_l - 1) * PAGE_SIZE + j - (page_s - 1) * PAGE_SIZE
        else:
            pos = page_l * PAGE_SIZE + j - page_s * PAGE_SIZE
        if pos >= large:
            raise ValueError(f"{small:,} runs do not fit beside the pages of {large:,}")
        newest_first.append(large - 1 - pos)
    return newest_first[::-1]


def seed(
    data_dir: Path,
    runs: int,
    *,
    seed: int = 0,
    now_us: int | None = None,
    only: list[int] | None = None,
) -> Seeded:
    """Fill ``data_dir`` (a PIPELINE_DATA_DIR) with ``runs`` finished runs, oldest first.

    Run ``i`` is the same for the same ``seed``, ``runs`` and ``now_us``; with ``only``
    (ascending indices) the store holds just those runs of the ``runs``.
    """
    t0 = time.perf_counter()
    data_dir.mkdir(parents=True, exist_ok=True)
    url = parse_url(f"sqlite:///{(data_dir / SQLITE_FILE).resolve()}")
    engine = create_engine(url, timeout_s=30.0)
    try:
        migrate(engine)
        t_migrated = time.perf_counter()
        now_us = now_us if now_us is not None else int(time.time() * 1_000_000)
        gap_us = WEEK_US // max(runs, 1)
        first_us = now_us - WEEK_US - 60_000_000
        build_s = insert_s = 0.0
        ids: list[str] = []
        completed, step_count, newest_completed = 0, 0, ""
        indices = list(range(runs)) if only is None else only
        with engine.begin() as db:
            for start in range(0, len(indices), INSERT_BATCH):
                tb = time.perf_counter()
                run_rows, steps = [], []
                for i in indices[start : start + INSERT_BATCH]:
                    # One generator per run: run i is the same in every store seeded alike.
                    rng = random.Random(seed * 1_000_003 + i)  # noqa: S311 - test data
                    run = make_run(rng, first_us + i * gap_us + rng.randrange(0, gap_us // 2 + 1))
                    run_rows.append(
                        {
                            **records.run_row(run),
                            **records.outcome_row(run),
                            "input_key": None,
                            "output_key": None,
                        }
                    )
                    steps += records.step_rows(run)
                    ids.append(run.run_id)
                    if run.status == pb.RUN_STATUS_COMPLETED:
                        completed += 1
                        newest_completed = run.run_id
                ti = time.perf_counter()
                db.execute(runs_table.insert(), run_rows)
                db.execute(step_results.insert(), steps)
                step_count += len(steps)
                build_s += ti - tb
                insert_s += time.perf_counter() - ti
            if newest_completed:
                # One real zip, for a download check; referenced only once written.
                blobs = open_blob_store((data_dir / BLOB_DIR).resolve().as_uri(), 30.0)
                data = _tiny_zip(newest_completed)
                blobs.put_bytes(output_key(newest_completed), data)
                db.execute(
                    runs_table.update()
                    .where(runs_table.c.run_id == newest_completed)
                    .values(
                        output_key=output_key(newest_completed),
                        output_size=len(data),
                        output_sha256=hashlib.sha256(data).hexdigest(),
                    )
                )
        with engine.connect() as db:
            # Everything in the main file: the pipeline opens it as a fresh reader.
            db.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    _hand_over(data_dir)
    seconds = time.perf_counter() - t0
    return Seeded(
        data_dir=data_dir,
        runs=len(indices),
        step_rows=step_count,
        completed=completed,
        seconds=seconds,
        migrate_s=t_migrated - t0,
        build_s=build_s,
        insert_s=insert_s,
        db_bytes=(data_dir / SQLITE_FILE).stat().st_size,
        run_ids=tuple(ids),
        download_run_id=newest_completed,
    )


def count_runs(data_dir: Path) -> tuple[int, int]:
    """(runs, step results) in a seeded data dir, read back through SQLAlchemy."""
    engine = sa.create_engine(f"sqlite:///{(data_dir / SQLITE_FILE).resolve()}")
    try:
        with engine.connect() as db:
            n_runs = db.execute(sa.select(sa.func.count()).select_from(runs_table)).scalar_one()
            n_steps = db.execute(sa.select(sa.func.count()).select_from(step_results)).scalar_one()
    finally:
        engine.dispose()
    return int(n_runs), int(n_steps)


# --- measuring -------------------------------------------------------------------


def deep_page_number(runs: int) -> int:
    """Page 250 of 10,000 runs; on a smaller store its last full page."""
    return max(1, min(DEEP_PAGE, runs // PAGE_SIZE))


@dataclass(frozen=True)
class Walk:
    page: int  # the deep page's number (1-based)
    token: str  # its page token ("" for page 1)
    seconds: float  # following next_page_token from page 1 to it
    first_page_ids: tuple[str, ...]
    deep_page_ids: tuple[str, ...]


def walk_to_deep_page(stub: pb_grpc.PipelineServiceStub, runs: int) -> Walk:
    """Follow next_page_token from the first page to the deep one, checking each page."""
    page = deep_page_number(runs)
    token, first = "", ()
    t0 = time.perf_counter()
    for number in range(1, page):
        reply = stub.ListRuns(
            pb.ListRunsRequest(page_size=PAGE_SIZE, page_token=token), timeout=CALL_TIMEOUT_S
        )
        if len(reply.runs) != PAGE_SIZE or not reply.next_page_token:
            raise StorePhaseFailed(
                f"ListRuns page {number} of a {runs:,}-run store: {len(reply.runs)} runs, "
                f"next token {reply.next_page_token!r}"
            )
        if number == 1:
            first = tuple(r.run_id for r in reply.runs)
        token = reply.next_page_token
    seconds = time.perf_counter() - t0
    reply = stub.ListRuns(
        pb.ListRunsRequest(page_size=PAGE_SIZE, page_token=token), timeout=CALL_TIMEOUT_S
    )
    if len(reply.runs) != PAGE_SIZE:
        raise StorePhaseFailed(f"ListRuns page {page}: {len(reply.runs)} runs, not {PAGE_SIZE}")
    deep = tuple(r.run_id for r in reply.runs)
    return Walk(page, token, seconds, first or deep, deep)


def _calls(
    stub: pb_grpc.PipelineServiceStub, run_ids: tuple[str, ...], walk: Walk, seed: int
) -> dict[str, Callable[[], object]]:
    rng = random.Random(seed)  # noqa: S311 - which run to ask for, not a secret
    picks = itertools.cycle([rng.choice(run_ids) for _ in range(4096)])
    first = pb.ListRunsRequest(page_size=PAGE_SIZE)
    deep = pb.ListRunsRequest(page_size=PAGE_SIZE, page_token=walk.token)

    def get_run() -> object:
        return stub.GetRun(pb.GetRunRequest(run_id=next(picks)), timeout=CALL_TIMEOUT_S)

    return {
        "GetRun": get_run,
        "ListRuns.first_page": lambda: stub.ListRuns(first, timeout=CALL_TIMEOUT_S),
        "ListRuns.deep_page": lambda: stub.ListRuns(deep, timeout=CALL_TIMEOUT_S),
    }


def paired_loop(
    calls: dict[str, Callable[[], object]], bounds: floor.Bounds
) -> dict[str, Histogram]:
    """The same call on every store in turn, one call at a time, each timed in µs.

    Alternating call by call (rather than a loop per store) gives every store the
    same moments of the machine: on a shared machine whose load comes and goes over
    seconds, two loops one after the other can differ by 40 % for that alone, and
    the ratio of their p50s with them. WARMUP_CALLS per store first, unrecorded;
    then until each store has ``bounds.max_calls`` or ``bounds.max_seconds`` per
    store have passed in all.
    """
    for call in calls.values():
        for _ in range(WARMUP_CALLS):
            call()
    hists = {name: Histogram() for name in calls}
    deadline = time.perf_counter() + bounds.max_seconds * len(calls)
    order = list(calls.items())
    for i in range(bounds.max_calls):
        # Who goes first alternates too: neither store always follows the other.
        for name, call in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter_ns()
            call()
            hists[name].record((time.perf_counter_ns() - t0) // 1000)
        if time.perf_counter() >= deadline:
            break
    return hists


@dataclass
class StoreResult:
    backend: str
    seeded: dict[str, Seeded]
    walks: dict[str, Walk]
    hists: dict[str, dict[str, Histogram]]  # call → store → µs
    bounds: floor.Bounds
    start_s: dict[str, float]  # container start → SERVING, per store


#: Start a pipeline on a data dir: (its host:port, a function that stops it).
Starter = Callable[[Path], tuple[str, Callable[[], None]]]


def measure(
    seeded: dict[str, Seeded],
    start: Starter,
    bounds: floor.Bounds,
    say: Callable[[str], None] = lambda _m: None,
) -> StoreResult:
    """Start one pipeline per seeded store (all up at once), then one paired loop per call."""
    stops: list[Callable[[], None]] = []
    channels: list[grpc.Channel] = []
    try:
        addrs, start_s = {}, {}
        for name, store in seeded.items():
            t0 = time.perf_counter()
            addr, stop = start(store.data_dir)
            stops.append(stop)
            start_s[name] = time.perf_counter() - t0
            addrs[name] = addr
        walks: dict[str, Walk] = {}
        calls: dict[str, dict[str, Callable[[], object]]] = {}
        for i, (name, store) in enumerate(seeded.items()):
            channel = grpc.insecure_channel(addrs[name])
            channels.append(channel)
            stub = pb_grpc.PipelineServiceStub(channel)
            walks[name] = walk_to_deep_page(stub, store.runs)
            say(
                f"  {name}: {store.runs:,} runs at {addrs[name]}, page {walks[name].page} "
                f"reached in {walks[name].seconds * 1000:.0f} ms"
            )
            calls[name] = _calls(stub, store.run_ids, walks[name], seed=i)
        hists = {call: paired_loop({n: calls[n][call] for n in seeded}, bounds) for call in CALLS}
        for call in CALLS:
            say(f"  {call}: " + ", ".join(f"{n} {h.count} calls" for n, h in hists[call].items()))
    finally:
        for channel in channels:
            channel.close()
        for stop in reversed(stops):
            stop()
    return StoreResult("sqlite", seeded, walks, hists, bounds, start_s)


def container_starter(image: str, stack: str) -> Starter:
    from harness import containers

    def start(data_dir: Path) -> tuple[str, Callable[[], None]]:
        box = containers.start_pipeline(image, stack, env=PIPELINE_ENV, data_dir=data_dir)
        return box.addr, box.remove

    return start


@contextmanager
def seeded_stores(
    runs: int, small_runs: int, root: Path | None = None
) -> Iterator[dict[str, Seeded]]:
    """Both stores in a temporary folder (or under ``root``), removed afterwards: the
    small one holds the large one's first and deep pages (``small_store_indices``)."""
    only = small_store_indices(runs, small_runs)
    now_us = int(time.time() * 1_000_000)
    with tempfile.TemporaryDirectory(
        prefix="bench-store-", dir=root, ignore_cleanup_errors=True
    ) as tmp:
        yield {
            "small": seed(Path(tmp) / "small", runs, seed=SEED, now_us=now_us, only=only),
            "large": seed(Path(tmp) / "large", runs, seed=SEED, now_us=now_us),
        }


def run(
    image: str,
    *,
    runs: int = RUNS,
    small_runs: int = SMALL_RUNS,
    bounds: floor.Bounds | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> StoreResult:
    """The whole phase against containers of ``image``: seed, start, measure, remove."""
    from harness.containers import new_stack_id

    bounds = bounds or floor.Bounds(max_calls=MAX_CALLS, max_seconds=MAX_SECONDS)
    with seeded_stores(runs, small_runs) as seeded:
        for name, store in seeded.items():
            say(
                f"  seeded {name}: {store.runs:,} runs, {store.step_rows:,} step results in "
                f"{store.seconds:.2f}s ({store.db_bytes / 1e6:.1f} MB)"
            )
        return measure(seeded, container_starter(image, new_stack_id()), bounds, say)


# --- the report section ------------------------------------------------------------


def section(result: StoreResult) -> dict[str, Any]:
    """report.json's ``run_store``: per call and store the µs summary, and large ÷ small p50."""
    calls: dict[str, Any] = {}
    for call, by_store in result.hists.items():
        entry: dict[str, Any] = {name: h.summary() for name, h in by_store.items()}
        small, large = by_store["small"].value_at(50), by_store["large"].value_at(50)
        entry["large_over_small_p50"] = round(large / small, 4) if small > 0 else None
        calls[call] = entry
    return {
        "backend": result.backend,
        "page_size": PAGE_SIZE,
        "bounds": {"max_calls": result.bounds.max_calls, "max_seconds": result.bounds.max_seconds},
        "stores": {
            name: {
                **store.to_json(),
                "deep_page": result.walks[name].page,
                "walk_to_deep_page_s": round(result.walks[name].seconds, 3),
                "start_to_serving_s": round(result.start_s.get(name, 0.0), 3),
            }
            for name, store in result.seeded.items()
        },
        "calls": calls,
    }


def raw_json(result: StoreResult) -> dict[str, Any]:
    return {call: {n: h.to_json() for n, h in by.items()} for call, by in result.hists.items()}
