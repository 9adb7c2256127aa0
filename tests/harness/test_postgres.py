"""harness.postgres and the store fixtures against a real PostgreSQL container:
the image, readiness, stop/start and kill/start keeping port and data, one fresh
database per test, and what a client sees while the server is down."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import socket
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pg8000.native
import pytest
import sqlalchemy as sa

from harness import postgres as pgmod
from harness.postgres import Postgres, PostgresFailed, start_postgres
from harness.store_fixtures import PostgresDatabase

pytestmark = pytest.mark.docker


@pytest.fixture
def own_server() -> Iterator[Postgres]:
    """A server of this test's own, for the tests that stop or kill it."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.remove()


def _engine(url: str) -> sa.Engine:
    # pool_pre_ping: pooled connections do not survive a server restart.
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"timeout": 5})


def test_the_image_is_tagged_by_its_dockerfile_and_reused() -> None:
    digest = hashlib.sha256(pgmod.DOCKERFILE.read_bytes()).hexdigest()[:16]
    assert pgmod.image_tag() == f"gtfs-postgres:{digest}"
    assert pgmod.build_image() == pgmod.image_tag()  # built here, or by another worker
    assert pgmod.image_exists(pgmod.image_tag())
    started = time.monotonic()
    assert pgmod.build_image() == pgmod.image_tag()
    assert time.monotonic() - started < 10  # present: no rebuild


def test_the_server_listens_on_loopback_as_a_non_root_user(postgres_server: Postgres) -> None:
    conn = postgres_server.connect()
    try:
        assert conn.run("SHOW listen_addresses") == [["127.0.0.1"]]
        assert conn.run("SHOW port") == [[str(postgres_server.port)]]
        assert conn.run("SELECT current_database()") == [["runs"]]
    finally:
        conn.close()
    postgres_server.container.reload()
    assert postgres_server.container.attrs["HostConfig"]["NetworkMode"] == "host"
    code, out = postgres_server.container.exec_run(["id", "-u"])
    assert code == 0
    assert out.decode().strip() != "0"
    assert postgres_server.name.startswith("gtfs-postgres-")
    assert postgres_server.url.startswith("postgresql+pg8000://runs:runs@127.0.0.1:")


def test_stop_then_start_keeps_the_port_and_the_data(own_server: Postgres) -> None:
    engine = _engine(own_server.url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE runs (id text PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO runs VALUES ('r1')"))
    port = own_server.port
    own_server.stop()
    assert own_server.status() == "exited"
    assert not pgmod.accepts_connections(port)
    own_server.start()
    assert own_server.port == port
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM runs")).scalars().all() == ["r1"]
    engine.dispose()


def test_kill_then_start_recovers_committed_rows(own_server: Postgres) -> None:
    engine = _engine(own_server.url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE runs (id text PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO runs VALUES ('before-kill')"))
    own_server.kill()
    assert own_server.status() == "exited"
    own_server.start()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM runs")).scalars().all() == ["before-kill"]
    engine.dispose()
    assert "database system was interrupted" in own_server.logs()


def test_a_stopped_server_refuses_at_once(own_server: Postgres) -> None:
    """Connection refused: SQLAlchemy raises InterfaceError (pg8000's), no wait."""
    engine = sa.create_engine(own_server.url, connect_args={"timeout": 5})
    own_server.stop()
    started = time.monotonic()
    with pytest.raises(sa.exc.InterfaceError) as caught:
        engine.connect()
    assert time.monotonic() - started < 2
    assert isinstance(caught.value.orig, pg8000.native.InterfaceError)
    engine.dispose()


def test_a_hung_server_times_out_with_a_bare_timeout_error(own_server: Postgres) -> None:
    """A server that accepts TCP but never answers (here: paused) is not refused:
    without connect_args={"timeout": ...} pg8000 waits forever; with one, the
    login raises the builtin TimeoutError, which SQLAlchemy does not wrap (it is
    not a DBAPI error), after that many seconds. pg8000 leaks that attempt's
    socket (a ResourceWarning, collected here)."""
    engine = sa.create_engine(own_server.url, connect_args={"timeout": 2})
    own_server.container.pause()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            engine.connect()
        assert 1.5 < time.monotonic() - started < 5
    finally:
        own_server.container.unpause()
        engine.dispose()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_a_pooled_connection_fails_after_a_restart(own_server: Postgres) -> None:
    """Without pool_pre_ping the first use of a pre-restart connection fails.

    pg8000 1.31 also leaks that connection: when the farewell message cannot be
    flushed, Connection.close() closes the socket but drops its buffered file
    unclosed, so a later garbage collection raises BrokenPipeError in that
    file's __del__ (and the fd stays open), which filterwarnings=error turns
    into a failure of whichever test runs then. With pool_pre_ping (the other
    tests here) a stale connection is dropped without that path."""
    engine = sa.create_engine(own_server.url, connect_args={"timeout": 5})
    files: list[Any] = []
    # "invalidate" fires before SQLAlchemy closes the connection: keep its file.
    sa.event.listen(engine, "invalidate", lambda dbapi, _record, _exc: files.append(dbapi._sock))
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    own_server.stop()
    own_server.start()
    with pytest.raises(sa.exc.InterfaceError), engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    with engine.connect() as conn:  # the pool dropped it; a new one works
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    engine.dispose()
    assert len(files) == 1
    for file in files:  # what pg8000's close() should have done
        with contextlib.suppress(OSError):
            file.close()  # closes the file even though its flush fails


def test_a_taken_port_fails_with_the_log() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(PostgresFailed, match=r"(?s)exited before.*could not bind"):
            start_postgres(port=port, timeout=20)


@pytest.mark.parametrize("round", [1, 2])
def test_each_test_gets_a_fresh_database(postgres: PostgresDatabase, round: int) -> None:
    engine = _engine(postgres.url)
    with engine.begin() as conn:
        # Fails on the second round if the database were shared.
        conn.execute(sa.text("CREATE TABLE runs (id text PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO runs VALUES (:id)"), {"id": f"r{round}"})
        assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 1
        assert conn.execute(sa.text("SELECT current_database()")).scalar() == postgres.name
    engine.dispose()
