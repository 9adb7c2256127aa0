"""pytest fixtures for run-store tests: a real PostgreSQL and a local Cloud Storage.

Import the ones a test folder needs in its conftest.py (fixtures are found by name):

    from harness.store_fixtures import gcs, gcs_emulator, postgres, postgres_server  # noqa: F401

- `postgres_server` (session): one PostgreSQL container per pytest-xdist worker
  (harness.postgres.start_postgres), removed at the end of the session.
- `postgres` (function): a fresh database on it, `CREATE DATABASE t_<hex>`, dropped
  after the test (WITH (FORCE): connections a test left open do not block it);
  `.url` is its SQLAlchemy URL. Tests never see each other's tables or rows.
- `gcs_emulator` (session) and `gcs` (function, a fresh bucket): testkit.gcs.

Tests that stop or kill a server start their own (`start_postgres()`,
`start_gcs_emulator()`) instead of the shared one.

Without a Docker engine the PostgreSQL fixtures skip their tests with the reason,
except on CI (CI=true), where they fail: the convention of conftest.py and
tools/run-tests.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import uuid
from collections.abc import Iterator

import pytest

from harness.engine import ensure_engine
from harness.postgres import Postgres, start_postgres
from testkit.gcs import gcs, gcs_emulator

__all__ = ["PostgresDatabase", "gcs", "gcs_emulator", "postgres", "postgres_server"]


@functools.cache
def _engine_problem() -> str | None:
    """Why no Docker engine is usable (None: it is). Asked once per process."""
    try:
        ensure_engine()
    except (RuntimeError, OSError) as err:
        return str(err)
    return None


def require_docker() -> None:
    """Skip the calling test without Docker; on CI (CI=true) fail instead."""
    problem = _engine_problem()
    if problem is None:
        return
    reason = f"no Docker engine answers (tools/ensure-docker): {problem}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true, so this is a failure, not a skip")
    pytest.skip(reason)


@dataclasses.dataclass(frozen=True)
class PostgresDatabase:
    """One test's database on the worker's server."""

    name: str
    server: Postgres

    @property
    def url(self) -> str:
        """`postgresql+pg8000://runs:runs@127.0.0.1:PORT/<name>`."""
        return self.server.url_for(self.name)

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """This worker's PostgreSQL container (image built once for all workers)."""
    require_docker()
    server = start_postgres()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres(postgres_server: Postgres) -> Iterator[PostgresDatabase]:
    """A fresh, empty database for this test, dropped afterwards."""
    if not postgres_server.running():
        # A test stopped the shared server after all: bring it back, same port and data.
        postgres_server.start()
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = postgres_server.connect()
    try:
        admin.run(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    try:
        yield PostgresDatabase(name, postgres_server)
    finally:
        if postgres_server.running():
            admin = postgres_server.connect()
            try:
                admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                admin.close()
