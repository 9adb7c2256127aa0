"""A real PostgreSQL server in a container, for tests of the pipeline's run store.

No registry can be pulled here, so the image is built locally from
harness/postgres/Dockerfile: Debian's `postgresql` package on the same base the
service images use (`base_image.resolve()`: present, pulled, or debootstrapped).
It is tagged `gtfs-postgres:<hash of the Dockerfile>`, so editing the Dockerfile
rebuilds it and an unchanged one is reused; the build runs under a file lock so
pytest-xdist workers build it once.

The cluster (user `runs`, password `runs`, database `runs`) is made at build
time, so a container is ready in about half a second. Every container runs with
host networking, listens on 127.0.0.1 only, on a free port given as its command
(`-p PORT`): `docker start` of a stopped container keeps its port and its data.
Containers are named `gtfs-postgres-<stack>-<hex>` and carry the stack label, so
`make down` removes leftovers.

    pg = start_postgres()
    engine = sqlalchemy.create_engine(pg.url)   # postgresql+pg8000://runs:runs@127.0.0.1:PORT/runs
    pg.stop(); pg.start()                       # same container, port and data
    pg.remove()

CLI: `python -m harness.postgres build` (build or reuse the image, print its tag),
`python -m harness.postgres run` (start one in the foreground until Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import docker
import docker.errors
import pg8000.native  # type: ignore[import-untyped]  # no type information published

from harness import base_image
from harness.containers import SERVICE_LABEL, STACK_LABEL, new_stack_id
from harness.engine import ensure_engine
from harness.locks import file_lock
from harness.tree import REPO_ROOT
from testkit.net import free_port

DOCKERFILE = REPO_ROOT / "harness" / "postgres" / "Dockerfile"
REPOSITORY = "gtfs-postgres"
BASE_LABEL = "org.cloudrun-gtfs.base"
LOCK = REPO_ROOT / ".cache" / "locks" / "postgres-image.lock"
# Fixed in the Dockerfile (build arguments with these defaults); tests only.
USER = "runs"
PASSWORD = "runs"  # noqa: S105 - a test-only server on loopback
DATABASE = "runs"
SERVICE = "postgres"
BUILD_TIMEOUT_S = 900.0
READY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 2.0
STOP_TIMEOUT_S = 10
LOG_TAIL_CHARS = 4000


class PostgresFailed(RuntimeError):
    """The server exited or never accepted connections; the message carries its log."""


def image_tag() -> str:
    """`gtfs-postgres:<first 16 hex of sha256(Dockerfile)>`."""
    return f"{REPOSITORY}:{hashlib.sha256(DOCKERFILE.read_bytes()).hexdigest()[:16]}"


def image_exists(ref: str) -> bool:
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        check=False,
        timeout=30,
    )
    return done.returncode == 0


def build_image(base: str | None = None, force: bool = False) -> str:
    """Build the image unless its tag exists; return the tag. Safe across processes."""
    ensure_engine()
    tag = image_tag()
    if not force and image_exists(tag):
        return tag
    with file_lock(LOCK):
        # Another worker may have built it while this one waited for the lock.
        if not force and image_exists(tag):
            return tag
        requested = base or os.environ.get("BASE_IMAGE") or base_image.DEFAULT_BASE
        chosen = base_image.resolve(requested).ref
        started = time.monotonic()
        args = ["docker", "build", "--quiet", "--network", "host", "--tag", tag]
        args += ["--build-arg", f"BASE_IMAGE={chosen}", "--label", f"{BASE_LABEL}={chosen}"]
        args += ["--file", str(DOCKERFILE), str(DOCKERFILE.parent)]
        # The classic builder, as for the service images: BuildKit would fetch its frontend.
        env = {**os.environ, "DOCKER_BUILDKIT": os.environ.get("DOCKER_BUILDKIT", "0")}
        try:
            done = subprocess.run(
                args, capture_output=True, text=True, env=env, check=False, timeout=BUILD_TIMEOUT_S
            )
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"docker build of {tag} took over {BUILD_TIMEOUT_S:.0f}s") from err
        if done.returncode != 0:
            raise RuntimeError(
                f"docker build of {tag} failed ({done.returncode}):\n"
                + (done.stdout + done.stderr)[-LOG_TAIL_CHARS:]
            )
        print(  # noqa: T201
            f"postgres image: built {tag} on {chosen} in {time.monotonic() - started:.1f}s",
            file=sys.stderr,
        )
    return tag


def accepts_connections(port: int, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """True when a pg8000 login to the `runs` database on 127.0.0.1:port succeeds."""
    # Our own socket, closed on every path: pg8000 leaks the one it opens when the
    # startup handshake times out (something listens but does not answer), which
    # the suite's filterwarnings=error turns into a failure.
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    with sock:
        try:
            conn = pg8000.native.Connection(
                USER, database=DATABASE, password=PASSWORD, timeout=timeout, sock=sock
            )
            conn.run("SELECT 1")
            conn.close()
        except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError):
            return False
    return True


@dataclasses.dataclass
class Postgres:
    """One PostgreSQL container on 127.0.0.1:port (host network)."""

    name: str
    image: str
    port: int
    stack: str
    container: Any  # docker.models.containers.Container (docker-py is untyped)
    user: str = USER
    password: str = PASSWORD
    database: str = DATABASE

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `runs` database."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql+pg8000://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str | None = None) -> pg8000.native.Connection:
        """A pg8000 connection (autocommit), e.g. for CREATE DATABASE."""
        return pg8000.native.Connection(
            self.user,
            host="127.0.0.1",
            port=self.port,
            database=database or self.database,
            password=self.password,
            timeout=CONNECT_TIMEOUT_S * 5,
        )

    def status(self) -> str:
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return "removed"
        return str(self.container.status)

    def running(self) -> bool:
        return self.status() == "running"

    def logs(self) -> str:
        try:
            return bytes(self.container.logs()).decode(errors="replace")
        except docker.errors.NotFound:
            return "(container already removed)"

    def _fail(self, why: str) -> PostgresFailed:
        return PostgresFailed(
            f"postgres {self.name} (127.0.0.1:{self.port}, {self.image}) {why}; "
            f"log tail:\n{self.logs()[-LOG_TAIL_CHARS:]}"
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Poll with pg8000 logins until one succeeds; seconds taken. Bounded by `timeout`."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if accepts_connections(self.port):
                return time.monotonic() - started
            if not self.running():
                raise self._fail("exited before it accepted connections")
            time.sleep(0.05)
        raise self._fail(f"did not accept connections within {timeout:.0f}s")

    def stop(self, timeout: int = STOP_TIMEOUT_S) -> None:
        """`docker stop` (SIGINT: PostgreSQL's fast shutdown); the data is kept."""
        with contextlib.suppress(docker.errors.NotFound):
            self.container.stop(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL at once: the next start runs crash recovery."""
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.container.kill()

    def start(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Start this same container again (same port, same data); wait until ready."""
        self.container.start()
        return self.wait_ready(timeout)

    def remove(self) -> None:
        """Remove the container and its data (idempotent)."""
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.container.remove(force=True)


@functools.cache
def _client() -> Any:
    """One docker-py client per process (each holds a connection pool)."""
    return docker.from_env(timeout=60)


def _run(image: str, port: int, stack: str, name: str | None) -> Postgres:
    name = name or f"gtfs-{SERVICE}-{stack}-{uuid.uuid4().hex[:6]}"
    container = _client().containers.run(
        image,
        command=["-p", str(port)],
        name=name,
        detach=True,
        network_mode="host",
        labels={STACK_LABEL: stack, SERVICE_LABEL: SERVICE},
        # /dev/shm: docker's 64 MB default is tight for parallel queries.
        shm_size="256m",
    )
    return Postgres(name, image, port, stack, container)


def start_postgres(
    name: str | None = None,
    stack: str | None = None,
    port: int | None = None,
    timeout: float = READY_TIMEOUT_S,
) -> Postgres:
    """Build the image if needed, start a container and wait until it accepts logins.

    `port` None picks a free one (retried with another when a race loses it).
    """
    image = build_image()
    stack = stack or new_stack_id()
    attempts = 1 if port or name else 3
    for attempt in range(1, attempts + 1):
        pg = _run(image, port or free_port(), stack, name)
        try:
            pg.wait_ready(timeout)
        except PostgresFailed:
            pg.remove()
            if attempt == attempts:
                raise
            continue
        except BaseException:
            pg.remove()
            raise
        return pg
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.postgres", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the image (or reuse it) and print its tag")
    b.add_argument("--force", action="store_true", help="rebuild even when the tag exists")
    sub.add_parser("run", help="start one server and keep it until Ctrl-C")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(build_image(force=args.force))  # noqa: T201
        return 0
    pg = start_postgres()
    print(pg.url, flush=True)  # noqa: T201
    try:
        while pg.running():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        pg.remove()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
