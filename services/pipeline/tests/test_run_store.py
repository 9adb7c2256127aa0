"""The run store's contract, the same for every backend.

Each test runs against SQLite + a folder and against PostgreSQL (a real server in
a container) + Cloud Storage (the real client against a local emulator). Two
RunStore objects on one backend are two pipeline instances; a clock the test
moves stands in for time passing (leases, retention, sweeps).
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from harness.postgres import start_postgres
from harness.store_fixtures import require_docker
from pipeline.v1 import pipeline_pb2 as pb
from pipeline_server.store import (
    BadPageToken,
    OutputMissing,
    Retention,
    RunNotFound,
    RunStore,
    StoreUnavailable,
    create_engine,
    open_blob_store,
    parse_url,
)
from pipeline_server.store.database import (
    SCHEMA_REVISION,
    current_revision,
    head_revision,
    migrate,
    migrate_with_alembic,
    stored_revision,
)
from pipeline_server.store.records import timestamp
from pipeline_server.store.run_store import UNCLAIMED_BLOB_GRACE_S, input_key, output_key
from pipeline_server.store.schema import metadata, pending_blobs
from testkit.gcs import start_gcs_emulator

LEASE_S = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    database_url: str
    output_url: str


@pytest.fixture(params=["sqlite-file", "postgres-gcs"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Backend:
    if request.param == "sqlite-file":
        return Backend(f"sqlite:///{tmp_path / 'runs.sqlite3'}", (tmp_path / "zips").as_uri())
    # A fresh database on a real PostgreSQL server (a container), and a fresh bucket on
    # a local Cloud Storage that the real google-cloud-storage client talks to.
    database = request.getfixturevalue("postgres")
    bucket = request.getfixturevalue("gcs")
    for name, value in bucket.env().items():
        monkeypatch.setenv(name, value)
    return Backend(database.url, f"{bucket.url}/runs")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def new_store(backend: Backend, clock: Clock) -> Iterator[Callable[..., RunStore]]:
    """An instance of the store on the shared backend, migrated and checked."""
    made: list[RunStore] = []

    def make(name: str = "a", retention: Retention | None = None, **kw: object) -> RunStore:
        store = RunStore(
            create_engine(parse_url(backend.database_url), timeout_s=5),
            open_blob_store(backend.output_url, timeout_s=5),
            max_concurrent=2,
            lease_s=LEASE_S,
            retention=retention or Retention(),
            instance_id=f"instance-{name}",
            clock=clock,
            **kw,  # type: ignore[arg-type]
        )
        store.open()
        made.append(store)
        return store

    yield make
    for store in made:
        store.engine.dispose()


def a_run(clock: Clock, label: str = "feed.zip") -> pb.Run:
    return pb.Run(
        run_id=RunStore.new_run_id(),
        status=pb.RUN_STATUS_RUNNING,
        label=label,
        started_at=timestamp(int(clock() * 1e6)),
        input_size=3,
        input_sha256=hashlib.sha256(b"zip").hexdigest(),
        version="0123abc",
    )


def completed(run: pb.Run, clock: Clock, output: bytes = b"output zip") -> tuple[pb.Run, bytes]:
    done = pb.Run()
    done.CopyFrom(run)
    done.status = pb.RUN_STATUS_COMPLETED
    done.finished_at.CopyFrom(timestamp(int(clock() * 1e6)))
    done.duration_ms = 12.5
    done.output_size = len(output)
    done.output_sha256 = hashlib.sha256(output).hexdigest()
    done.step_results.add(
        step_name="drop_unnamed_stops",
        status=pb.STEP_STATUS_SUCCESS,
        duration_ms=1.5,
        row_counts=[pb.FileRowCount(file="stops.txt", rows_before=3, rows_after=2)],
        findings=[
            pb.Finding(
                code="unnamed_stop",
                severity="warning",
                message="stop S3 has no name",
                context={"stop_id": "S3"},
                occurrence_count=1,
            )
        ],
        messages=["dropped 1 stop"],
    )
    done.step_results.add(step_name="publisher", status=pb.STEP_STATUS_SKIPPED)
    return done, output


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    path = tmp_path / "upload.zip"
    path.write_bytes(b"zip")
    return path


def started(store: RunStore, clock: Clock, upload: Path, label: str = "feed.zip") -> pb.Run:
    run = a_run(clock, label)
    store.start(run, upload)
    return run


def download(store: RunStore, run_id: str) -> bytes:
    return b"".join(store.read_output(run_id, chunk_bytes=4))


def pending(store: RunStore) -> list[str]:
    with store.engine.connect() as db:
        return sorted(db.execute(sa.select(pending_blobs.c.key)).scalars())


# --- one instance ------------------------------------------------------------------


def test_a_run_round_trips_with_every_step_detail(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    store = new_store()
    run = started(store, clock, upload)
    assert store.get(run.run_id).status == pb.RUN_STATUS_RUNNING
    done, output = completed(run, clock)
    stored = store.finish(done, output)
    expected = pb.Run()
    expected.CopyFrom(done)
    expected.output_available = True
    assert stored == expected, "every field, step, row count, finding and message comes back"
    assert download(store, run.run_id) == output
    assert store.blobs.exists(input_key(run.run_id)), "the input zip is kept beside the output"
    assert pending(store) == [], "a finished run leaves no pending blob"
    assert store.last_finished_us() == int(clock() * 1e6)


def test_unknown_run_and_missing_output_are_distinct(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    store = new_store()
    with pytest.raises(RunNotFound):
        store.get("0" * 32)
    with pytest.raises(RunNotFound):
        store.read_output("0" * 32, 4)
    run = started(store, clock, upload)
    with pytest.raises(OutputMissing):
        store.read_output(run.run_id, 4)  # still running: no zip yet


def test_a_failed_run_has_no_output(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    store = new_store()
    run = started(store, clock, upload)
    run.status, run.error = pb.RUN_STATUS_FAILED, "step publisher failed"
    run.finished_at.CopyFrom(timestamp(int(clock() * 1e6)))
    stored = store.finish(run, None)
    assert stored.status == pb.RUN_STATUS_FAILED
    assert stored.error == "step publisher failed"
    assert not stored.output_available
    with pytest.raises(OutputMissing):
        store.read_output(run.run_id, 4)


def test_pages_are_newest_first_and_stable_while_runs_are_added(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    store = new_store()
    ids = [started(store, clock, upload).run_id for _ in range(25)]
    first, token = store.page(10, "")
    assert [r.run_id for r in first] == ids[::-1][:10]
    newer = started(store, clock, upload).run_id  # arrives between pages
    second, token = store.page(10, token)
    third, token = store.page(10, token)
    assert [r.run_id for r in second + third] == ids[::-1][10:]
    assert token == "", "no token after the last page"
    assert newer not in {r.run_id for r in second + third}
    with pytest.raises(BadPageToken, match="not a token this service issued"):
        store.page(10, "garbage" * 100)


def test_a_zip_is_never_overwritten(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    store = new_store()
    run = started(store, clock, upload)
    with pytest.raises(FileExistsError):
        store.blobs.put_file(input_key(run.run_id), upload)


# --- many instances ----------------------------------------------------------------


def test_a_run_started_on_one_instance_is_seen_from_another(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    a, b = new_store("a"), new_store("b")
    run = started(a, clock, upload)
    assert b.get(run.run_id).status == pb.RUN_STATUS_RUNNING
    assert b.active_everywhere() == 1, "leases are seen by every instance"
    assert b.active == 0, "run slots are per instance"
    done, output = completed(run, clock)
    a.finish(done, output)
    assert b.get(run.run_id).status == pb.RUN_STATUS_COMPLETED
    assert download(b, run.run_id) == output
    assert [r.run_id for r in b.page(10, "")[0]] == [run.run_id]


def test_a_dead_instances_run_fails_once_its_lease_expires(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    dead, alive = new_store("dead"), new_store("alive")
    run = started(dead, clock, upload)
    clock.advance(LEASE_S / 2)
    assert alive.fail_abandoned() == 0, "a live lease is left alone"
    clock.advance(LEASE_S)
    assert alive.fail_abandoned() == 1
    failed = alive.get(run.run_id)
    assert failed.status == pb.RUN_STATUS_FAILED
    assert "abandoned: instance instance-dead stopped renewing its lease" in failed.error
    assert failed.HasField("finished_at")
    assert alive.active_everywhere() == 0


def test_a_renewed_lease_keeps_a_long_run_alive(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    runner, other = new_store("runner"), new_store("other")
    run = started(runner, clock, upload)
    for _ in range(5):
        clock.advance(LEASE_S / 3)
        assert runner.renew_leases() == 1
        assert other.fail_abandoned() == 0
    assert other.get(run.run_id).status == pb.RUN_STATUS_RUNNING


def test_a_run_declared_abandoned_is_not_resurrected(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    slow, other = new_store("slow"), new_store("other")
    run = started(slow, clock, upload)
    clock.advance(LEASE_S * 2)  # e.g. the database was away longer than the lease
    other.fail_abandoned()
    done, output = completed(run, clock)
    stored = slow.finish(done, output)
    assert stored.status == pb.RUN_STATUS_FAILED, "the failed record stands"
    assert not stored.output_available
    assert pending(slow) == [output_key(run.run_id)], "the late zip is pending, not referenced"
    assert other.sweep_pending() == 1
    assert not other.blobs.exists(output_key(run.run_id))
    assert pending(other) == []


def test_shutdown_fails_only_this_instances_runs(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    a, b = new_store("a"), new_store("b")
    mine, theirs = started(a, clock, upload), started(b, clock, upload)
    assert a.fail_own_running("the instance shut down mid-run") == 1
    assert a.get(mine.run_id).status == pb.RUN_STATUS_FAILED
    assert a.get(theirs.run_id).status == pb.RUN_STATUS_RUNNING


# --- retention and crashes -----------------------------------------------------------


def _finish(store: RunStore, clock: Clock, upload: Path) -> pb.Run:
    run = started(store, clock, upload)
    done, output = completed(run, clock)
    return store.finish(done, output)


def test_retention_by_count_deletes_oldest_runs_with_their_zips(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    store = new_store(retention=Retention(runs=3))
    runs = [_finish(store, clock, upload) for _ in range(5)]
    running = started(store, clock, upload)  # counts, but is never deleted
    assert store.apply_retention() == 3
    kept = [r.run_id for r in store.page(10, "")[0]]
    assert kept == [running.run_id, runs[4].run_id, runs[3].run_id]
    for gone in runs[:3]:
        with pytest.raises(RunNotFound):
            store.get(gone.run_id)
        assert not store.blobs.exists(input_key(gone.run_id))
        assert not store.blobs.exists(output_key(gone.run_id))
    assert pending(store) == []


def test_retention_by_age(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    store = new_store(retention=Retention(days=7))
    old = _finish(store, clock, upload)
    clock.advance(6 * 86400)
    recent = _finish(store, clock, upload)
    assert store.apply_retention() == 0
    clock.advance(2 * 86400)
    assert store.apply_retention() == 1
    with pytest.raises(RunNotFound):
        store.get(old.run_id)
    assert download(store, recent.run_id)


def test_a_crash_between_zip_and_row_leaves_nothing_behind(new_store, clock, upload) -> None:  # type: ignore[no-untyped-def]
    store = new_store()
    # What a process killed right after uploading an input leaves: a pending blob, no row.
    store._pend(input_key("f" * 32), "f" * 32)
    store.blobs.put_file(input_key("f" * 32), upload)
    assert store.sweep_pending() == 0, "it may still be uploading"
    clock.advance(UNCLAIMED_BLOB_GRACE_S + 1)
    assert store.sweep_pending() == 1
    assert not store.blobs.exists(input_key("f" * 32))
    assert pending(store) == []


def test_a_bucket_lost_during_a_run_fails_the_run_with_that_reason(
    tmp_path: Path, clock: Clock, upload: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = start_gcs_emulator()  # its own: the test stops it
    try:
        for name, value in emulator.env().items():
            monkeypatch.setenv(name, value)
        bucket = emulator.create_bucket()
        store = RunStore(
            create_engine(parse_url(f"sqlite:///{tmp_path / 'runs.sqlite3'}"), timeout_s=2),
            open_blob_store(f"gs://{bucket}/runs", timeout_s=2),
            max_concurrent=1,
            lease_s=LEASE_S,
            retention=Retention(),
            clock=clock,
        )
        store.open()
        run = started(store, clock, upload)
        emulator.stop()
        with pytest.raises(StoreUnavailable, match="blob store unavailable"):
            store.check()
        done, output = completed(run, clock)
        stored = store.finish(done, output)
        assert stored.status == pb.RUN_STATUS_FAILED
        assert "the output could not be stored" in stored.error
        assert not stored.output_available, "no completed row without its zip"
        assert pending(store) == [output_key(run.run_id)], "swept once the bucket is back"
        with pytest.raises(StoreUnavailable, match="blob store unavailable"):
            started(store, clock, upload)  # no run starts without its input stored
        store.engine.dispose()
    finally:
        emulator.kill()


# --- schema and migrations -----------------------------------------------------------


def test_migrations_build_exactly_the_declared_schema(backend) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(parse_url(backend.database_url), timeout_s=5)
    try:
        assert current_revision(engine) is None
        assert migrate_with_alembic(engine) == head_revision()
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
        assert diff == [], "schema.py and the migrations disagree"
        assert migrate(engine) == head_revision(), "a second run is a no-op"
        assert head_revision() == SCHEMA_REVISION, "database.SCHEMA_REVISION names the newest"
    finally:
        engine.dispose()


def test_an_empty_store_gets_the_declared_schema_at_alembics_head(backend) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(parse_url(backend.database_url), timeout_s=5)
    try:
        assert migrate(engine) == SCHEMA_REVISION
        # Alembic reads it as its own head, finds nothing to upgrade, and sees
        # exactly the schema its migrations would have built.
        assert current_revision(engine) == head_revision()
        assert migrate_with_alembic(engine) == head_revision()
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
            (count,) = connection.execute(sa.text("SELECT count(*) FROM alembic_version")).one()
        assert diff == []
        assert count == 1
    finally:
        engine.dispose()


def test_a_store_with_tables_but_no_version_is_left_to_alembic(backend) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(parse_url(backend.database_url), timeout_s=5)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE runs (id INTEGER PRIMARY KEY)"))
        # Not empty: no shortcut; Alembic's upgrade meets the table and says so.
        with pytest.raises(sa.exc.SQLAlchemyError, match="runs"):
            migrate(engine)
        assert stored_revision(engine) is None
    finally:
        engine.dispose()


def _migrate_in_a_process(url: str) -> str:
    engine = create_engine(parse_url(url), timeout_s=30)
    try:
        return migrate(engine)
    finally:
        engine.dispose()


def test_ten_instances_starting_at_once_migrate_once(backend) -> None:  # type: ignore[no-untyped-def]
    with multiprocessing.get_context("spawn").Pool(10) as pool:
        revisions = pool.map(_migrate_in_a_process, [backend.database_url] * 10)
    assert revisions == [head_revision()] * 10


def test_a_database_that_cannot_be_opened_says_why(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    store = RunStore(
        create_engine(parse_url(f"sqlite:///{tmp_path / 'file' / 'runs.sqlite3'}"), timeout_s=1),
        open_blob_store((tmp_path / "zips").as_uri(), timeout_s=1),
        max_concurrent=1,
        lease_s=LEASE_S,
        retention=Retention(),
    )
    with pytest.raises(StoreUnavailable, match="database unavailable"):
        store.open()


def test_a_database_lost_during_a_run_fails_the_run_with_that_reason_once_back(
    tmp_path: Path, clock: Clock, upload: Path
) -> None:
    require_docker()
    server = start_postgres()  # its own server: the test stops it
    try:
        store = RunStore(
            create_engine(parse_url(server.url), timeout_s=2),
            open_blob_store((tmp_path / "zips").as_uri(), timeout_s=2),
            max_concurrent=1,
            lease_s=LEASE_S,
            retention=Retention(),
            instance_id="instance-a",
            clock=clock,
        )
        store.open()
        run = started(store, clock, upload)
        server.stop()
        done, output = completed(run, clock)
        with pytest.raises(StoreUnavailable, match="database unavailable"):
            store.finish(done, output)
        assert not store.blobs.exists(output_key(run.run_id)), "no zip without its row"
        with pytest.raises(StoreUnavailable):
            store.upkeep()
        server.start()
        store.upkeep()
        failed = store.get(run.run_id)
        assert failed.status == pb.RUN_STATUS_FAILED
        assert "its outcome could not be recorded: database unavailable" in failed.error
        assert not failed.output_available
        assert pending(store) == []
        store.engine.dispose()
    finally:
        server.remove()
