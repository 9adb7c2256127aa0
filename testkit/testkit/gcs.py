"""A local Cloud Storage for tests: gcp-storage-emulator on 127.0.0.1, a free port.

The emulator runs as a subprocess of this interpreter (`python -m
testkit.gcs_emulator`, which adds the generation preconditions the emulator
ignores: see that module), in memory, so stopping it is a real outage (connection
refused) and two pipeline processes or containers (host network) can share it.

    emu = start_gcs_emulator()
    client = emu.client()                  # real google-cloud-storage, anonymous
    bucket = emu.create_bucket()           # a fresh, uniquely named bucket
    env = emu.env()                        # {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:PORT"}
    emu.stop()

Fixtures (import them in a conftest): `gcs_emulator` (one per session/xdist worker)
and `gcs` (a fresh bucket per test, a `GcsBucket`).

When the emulator is down, google-cloud-storage's default retry (DEFAULT_RETRY,
deadline 120 s, exponential backoff) keeps retrying the refused connection for
about 60-90 s and then raises `google.api_core.exceptions.RetryError`; pass
`retry=bounded_retry()` (a few seconds, still `RetryError`) or `retry=None` (at
once: `requests.exceptions.ConnectionError`) where a test or a readiness check
must notice quickly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.api_core.exceptions import GoogleAPIError
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]  # no py.typed

from testkit.net import free_port

PROJECT = "test-project"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
ENV_VAR = "STORAGE_EMULATOR_HOST"


class EmulatorFailed(RuntimeError):
    """The emulator exited or never answered; the message carries its output."""


def bounded_retry(deadline: float = 3.0) -> Retry:
    """google-cloud-storage's default retry policy, given up after `deadline` seconds."""
    retry: Retry = storage.retry.DEFAULT_RETRY.with_timeout(deadline)
    return retry


def answers(endpoint: str, timeout: float = 1.0) -> bool:
    """True when the emulator's health endpoint (`GET /`) says OK."""
    try:
        reply = httpx.get(f"{endpoint}/", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return False
    return reply.status_code == 200


@dataclasses.dataclass
class GcsEmulator:
    port: int
    log_path: Path
    preconditions: bool = True
    data_dir: Path | None = None
    popen: subprocess.Popen[bytes] | None = dataclasses.field(default=None, init=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a process (or a host-network container) needs to use this emulator."""
        return {ENV_VAR: self.endpoint}

    def client(self, project: str = PROJECT) -> storage.Client:
        """A real google-cloud-storage client for this emulator (anonymous credentials).

        Close it (`client.close()`) or use it in a `with` block."""
        return storage.Client(
            project=project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.endpoint},
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (default: a unique `test-<hex>` name) and return its name."""
        name = name or f"test-{uuid.uuid4().hex[:16]}"
        with self.client() as client:
            client.create_bucket(name, retry=bounded_retry())
        return name

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def _fail(self, why: str) -> EmulatorFailed:
        return EmulatorFailed(f"gcs emulator {self.endpoint} {why}; output:\n{self.log()[-4000:]}")

    def start(self, timeout: float = START_TIMEOUT_S) -> float:
        """Start (or start again, same port) and wait until it answers; seconds taken."""
        if self.alive():
            return 0.0
        argv = [sys.executable, "-m", "testkit.gcs_emulator", "--port", str(self.port)]
        if not self.preconditions:
            argv.append("--no-preconditions")
        if self.data_dir is not None:
            argv += ["--data-dir", str(self.data_dir)]
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if answers(self.endpoint):
                return time.monotonic() - started
            if not self.alive():
                raise self._fail("exited before it answered")
            time.sleep(0.02)
        self.stop()
        raise self._fail(f"did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        """End the process (in-memory objects are gone; a data_dir keeps them)."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(STOP_TIMEOUT_S)

    def kill(self) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait(STOP_TIMEOUT_S)


def start_gcs_emulator(
    port: int | None = None,
    log_dir: Path | None = None,
    preconditions: bool = True,
    data_dir: Path | None = None,
    timeout: float = START_TIMEOUT_S,
) -> GcsEmulator:
    """Start an emulator on 127.0.0.1 (`port` None: a free one, retried if a race loses it)."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="gcs-emulator-"))
    attempts = 1 if port else 3
    for attempt in range(1, attempts + 1):
        chosen = port or free_port()
        emu = GcsEmulator(chosen, log_dir / f"gcs-emulator-{chosen}.log", preconditions, data_dir)
        try:
            emu.start(timeout)
        except EmulatorFailed:
            emu.stop()
            if attempt == attempts:
                raise
            continue
        return emu
    raise AssertionError("unreachable")


@dataclasses.dataclass
class GcsBucket:
    """One test's bucket on the shared emulator, with a client for it."""

    name: str
    emulator: GcsEmulator
    client: storage.Client

    @property
    def url(self) -> str:
        """`gs://<bucket>`, the form PIPELINE_OUTPUT_URL takes (add a /prefix)."""
        return f"gs://{self.name}"

    @property
    def bucket(self) -> storage.Bucket:
        return self.client.bucket(self.name)

    def env(self) -> dict[str, str]:
        return self.emulator.env()


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """One emulator per session (per xdist worker), in memory."""
    emu = start_gcs_emulator(log_dir=tmp_path_factory.mktemp("gcs-emulator"))
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def gcs(gcs_emulator: GcsEmulator) -> Iterator[GcsBucket]:
    """A fresh bucket for this test (the emulator restarted if a test stopped it)."""
    gcs_emulator.start()
    name = gcs_emulator.create_bucket()
    client = gcs_emulator.client()
    try:
        yield GcsBucket(name, gcs_emulator, client)
    finally:
        if gcs_emulator.alive():
            # Best effort: a bucket left behind is gone when the emulator stops.
            # OSError: requests' connection errors are OSErrors.
            with contextlib.suppress(GoogleAPIError, OSError):
                for blob in client.list_blobs(name, retry=bounded_retry()):
                    blob.delete(retry=bounded_retry())
                client.bucket(name).delete(retry=bounded_retry())
        client.close()
