"""Test support: real ``pipeline-server`` and ``console-server`` processes,
each on a free loopback port, and tiny GTFS zips built in memory.

Real processes, not in-process apps: the console's settings, logging, channel
and shutdown are exercised as they run in the image, and a pipeline can be
stopped and restarted under a console that keeps running.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import zipfile
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from google.auth import crypt
from google.auth import jwt as google_jwt
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from testkit.http_stub import LoopbackHttpStub
from testkit.keys import private_pem, rsa_key, self_signed
from testkit.net import free_port
from testkit.zips import make_zip

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_SECONDS = 30.0

# A feed the metro_schedule pipeline completes: two stops share a name and a
# place (merged), one is unused (removed).
TINY_FEED: dict[str, str] = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n"
    "A,Metro,https://metro.example,Europe/Paris\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
    "S1,Central,48.85,2.35,0,\n"
    "S2,Central,48.85,2.35,0,\n"
    "S3,North,48.86,2.36,0,\n"
    "S4,Unused,48.87,2.37,0,\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\n"
    "R1,A,1,Line 1,1\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
    "T1,08:00:00,08:00:00,S1,1\n"
    "T1,08:05:00,08:05:00,S3,2\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
    "start_date,end_date\nWK,1,1,1,1,1,0,0,20260101,20261231\n",
}

# A served stop whose parent_station does not exist: validate_stop_hierarchy
# fails, so the run fails.
BROKEN_HIERARCHY: dict[str, str] = {
    **TINY_FEED,
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
    "S1,Central,48.85,2.35,0,NOPE\n"
    "S3,North,48.86,2.36,0,\n",
}


def padded_zip(size: int) -> bytes:
    """A zip of about ``size`` bytes (incompressible padding, stored)."""
    return make_zip({**TINY_FEED, "padding.bin": os.urandom(size)}, compression=zipfile.ZIP_STORED)


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment minus anything that would send loopback traffic
    elsewhere (proxies) or pick other credentials."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"http_proxy", "https_proxy", "grpc_proxy", "all_proxy"}
        and not k.startswith(("GCE_METADATA", "GOOGLE_", "PIPELINE_", "CONSOLE_"))
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env.update(extra)
    return env


@dataclass
class Proc:
    """A server subprocess with its output in a file (shown when it fails)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        # Append: a restarted server keeps its earlier lines for diagnosis.
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def fail(self, why: str) -> None:
        pytest.fail(f"{self.name}: {why}\n--- {self.log_path} ---\n{self.log()[-6000:]}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.popen is not None
        self.popen.send_signal(sig)
        if sig == signal.SIGSTOP:
            # kill() returns before the kernel has stopped every thread: on a loaded
            # machine the process can still answer a call or two. Wait until it is stopped.
            self._wait_state("T", timeout=5.0)

    def _wait_state(self, want: str, timeout: float) -> None:
        assert self.popen is not None
        stat = Path(f"/proc/{self.popen.pid}/stat")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                # Field 3 (after "pid (comm)") is the state letter; T = stopped.
                state = stat.read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                return  # no /proc (not Linux) or the process is gone: nothing to wait for
            if state == want:
                return
            time.sleep(0.01)
        raise AssertionError(f"pid {self.popen.pid} not in state {want} after {timeout} s")

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        # A stopped (SIGSTOP) process ignores SIGTERM until continued.
        self.popen.send_signal(signal.SIGCONT)
        self.popen.terminate()
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(5)


@dataclass
class PipelineServer(Proc):
    port: int = 0

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_serving(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.addr) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if not self.alive():
                    self.fail("exited before SERVING")
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        self.fail(f"not SERVING within {timeout} s")


@dataclass
class ConsoleServer(Proc):
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, trust_env=False, **kwargs)  # type: ignore[arg-type]

    def wait_up(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    self.fail("exited before answering /healthz")
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.fail(f"/healthz not 200 within {timeout} s")

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> float:
        """Poll /readyz until 200; returns the seconds it took."""
        start = time.monotonic()
        with self.client() as client:
            while time.monotonic() - start < timeout:
                if client.get("/readyz").status_code == 200:
                    return time.monotonic() - start
                time.sleep(0.2)
        self.fail(f"/readyz not 200 within {timeout} s")
        raise AssertionError  # unreachable: fail() raises


class Launcher:
    """Starts real server processes and stops them all at the end."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self._tmp = tmp
        self._started: list[Proc] = []

    def pipeline(self, port: int | None = None, **env: str) -> PipelineServer:
        """A pipeline-server serving metro_schedule (settings such as PIPELINE_* and
        IMAGE_COMMIT as kwargs)."""
        port = port or free_port()
        workdir = self._tmp.mktemp("pipeline")
        server = PipelineServer(
            name=f"pipeline-server :{port}",
            argv=[str(BIN / "pipeline-server")],
            env=clean_env(
                **{
                    "PORT": str(port),
                    "PIPELINE_NAME": "metro_schedule",
                    "IMAGE_COMMIT": "pipeline-test-commit",
                    "PIPELINE_DATA_DIR": str(workdir / "data"),
                    **env,
                }
            ),
            log_path=workdir / "pipeline.log",
            port=port,
        )
        server.start()
        self._started.append(server)
        server.wait_serving()
        return server

    def restart(self, server: PipelineServer) -> None:
        """Start a stopped pipeline again, same port and settings."""
        server.start()
        server.wait_serving()

    def console(self, pipeline_addr: str, **env: str) -> ConsoleServer:
        """A console-server for PIPELINE_ADDR (other settings as kwargs).

        ``pipeline_addr`` may list several addresses, comma-separated: the
        console balances over them (round_robin)."""
        port = free_port()
        workdir = self._tmp.mktemp("console")
        server = ConsoleServer(
            name=f"console-server :{port}",
            argv=[str(BIN / "console-server")],
            env=clean_env(
                PORT=str(port),
                PIPELINE_ADDR=pipeline_addr,
                IMAGE_COMMIT="console-test-commit",
                **env,
            ),
            log_path=workdir / "console.log",
            port=port,
        )
        server.start()
        self._started.append(server)
        server.wait_up()
        return server

    def stop_all(self) -> None:
        # Consoles first: their channel closes against a live pipeline.
        for server in reversed(self._started):
            server.stop()


# Caps of the shared stack, small so over-cap uploads stay cheap: the console
# refuses more than CONSOLE_CAP itself; the pipeline refuses more than
# PIPELINE_CAP (less than the console's) with RESOURCE_EXHAUSTED.
CONSOLE_CAP = 1024 * 1024
PIPELINE_CAP = 256 * 1024


@dataclass
class Stack:
    pipeline: PipelineServer
    console: ConsoleServer


# --- a pipeline stand-in -------------------------------------------------------


@dataclass
class Call:
    method: str
    metadata: dict[str, str]
    # Seconds left of the call's deadline when it arrived; None = no deadline.
    time_remaining: float | None


class StandInPipeline(pb_grpc.PipelineServiceServicer):
    """A pipeline.v1 server that records every call (metadata, deadline) and
    can be told to fail GetStatus with given codes first."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.fail_status_with: list[grpc.StatusCode] = []
        self._lock = threading.Lock()

    def record(self, method: str, context: grpc.ServicerContext) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        with self._lock:
            self.calls.append(Call(method, metadata, context.time_remaining()))

    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    def GetStatus(
        self, request: pb.GetStatusRequest, context: grpc.ServicerContext
    ) -> pb.GetStatusResponse:
        self.record("GetStatus", context)
        with self._lock:
            code = self.fail_status_with.pop(0) if self.fail_status_with else None
        if code is not None:
            context.abort(code, f"injected {code.name}")
        return pb.GetStatusResponse(
            healthy=True, pipeline_name="stand_in", step_count=1, version="stand-in"
        )

    def ListSteps(
        self, request: pb.ListStepsRequest, context: grpc.ServicerContext
    ) -> pb.ListStepsResponse:
        self.record("ListSteps", context)
        return pb.ListStepsResponse(
            steps=[pb.Step(name="only", type=pb.STEP_TYPE_CUSTOM, index=0, enabled=True)]
        )

    def GetDag(self, request: pb.GetDagRequest, context: grpc.ServicerContext) -> pb.GetDagResponse:
        self.record("GetDag", context)
        dag = {"nodes": [{"id": "only", "type": "custom", "builtin": None}], "edges": []}
        return pb.GetDagResponse(reactflow_json=json.dumps(dag), node_count=1)

    def _run(self, run_id: str) -> pb.Run:
        return pb.Run(run_id=run_id, status=pb.RUN_STATUS_COMPLETED, output_available=True)

    def RunPipeline(
        self, request_iterator: Iterator[pb.RunPipelineRequest], context: grpc.ServicerContext
    ) -> pb.Run:
        self.record("RunPipeline", context)
        size = sum(len(m.chunk) for m in request_iterator)
        run = self._run("r1")
        run.input_size = size
        return run

    def GetRun(self, request: pb.GetRunRequest, context: grpc.ServicerContext) -> pb.Run:
        self.record("GetRun", context)
        return self._run(request.run_id)

    def ListRuns(
        self, request: pb.ListRunsRequest, context: grpc.ServicerContext
    ) -> pb.ListRunsResponse:
        self.record("ListRuns", context)
        return pb.ListRunsResponse(runs=[self._run("r1")])

    def DownloadOutput(
        self, request: pb.DownloadOutputRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.DownloadOutputResponse]:
        self.record("DownloadOutput", context)
        yield pb.DownloadOutputResponse(chunk=b"PK\x05\x06" + bytes(18))


class RecordingHealth(health.HealthServicer):  # type: ignore[misc]  # grpc_health is untyped
    def __init__(self, pipeline: StandInPipeline) -> None:
        super().__init__()
        self._pipeline = pipeline

    def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        self._pipeline.record("Health.Check", context)
        return super().Check(request, context)


@dataclass
class StandIn:
    servicer: StandInPipeline
    server: grpc.Server
    port: int
    # Its grpc.health.v1 servicer: set("", NOT_SERVING) to make it say so.
    health: RecordingHealth

    def stop(self) -> None:
        self.server.stop(None).wait()


def start_stand_in(
    *,
    tls: tuple[bytes, bytes] | None = None,
    host: str = "127.0.0.1",
    servicer: StandInPipeline | None = None,
) -> StandIn:
    """Serve the stand-in on a free port; ``tls`` = (key PEM, certificate PEM);
    ``servicer``: a StandInPipeline subclass that behaves as a test needs."""
    servicer = servicer if servicer is not None else StandInPipeline()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_PipelineServiceServicer_to_server(servicer, server)
    health_servicer = RecordingHealth(servicer)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"{host}:0"
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, grpc.ssl_server_credentials([tls]))
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return StandIn(servicer, server, port, health_servicer)


# --- TLS and Google credentials stand-ins ----------------------------------------------


def self_signed_localhost() -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) for "localhost" and 127.0.0.1, its own CA."""
    key = rsa_key()
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = self_signed(
        key,
        "localhost",
        [
            (x509.SubjectAlternativeName(names), False),
            (x509.BasicConstraints(ca=True, path_length=None), True),
        ],
    )
    return private_pem(key), cert


IDENTITY_PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"
SERVICE_ACCOUNT_PATH = "/computeMetadata/v1/instance/service-accounts/default/"
SERVICE_ACCOUNT = "console@test-project.iam.gserviceaccount.com"


class MetadataServer(LoopbackHttpStub):
    """A stand-in for the GCE/Cloud Run metadata server, enough for
    ``google.oauth2.id_token.fetch_id_token``: the detection ping on ``/``,
    the service account, and ID tokens signed with a test RSA key."""

    def __init__(self, *, lifetime: int, identity_status: int = 200) -> None:
        self.key = rsa_key()
        self.lifetime = lifetime
        self.identity_status = identity_status
        self.issued: list[str] = []
        self.audiences: list[str] = []
        self.flavorless = 0
        self._signer = crypt.RSASigner.from_string(private_pem(self.key))  # type: ignore[no-untyped-call]
        super().__init__(self._handler())

    def _token(self, audience: str) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": audience,
            "sub": "1234567890",
            "email": SERVICE_ACCOUNT,
            "iat": now,
            "exp": now + self.lifetime,
            # Two tokens issued in the same second still differ.
            "jti": str(len(self.issued)),
        }
        token: str = google_jwt.encode(self._signer, claims).decode()  # type: ignore[no-untyped-call]
        self.issued.append(token)
        return token

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if self.headers.get("Metadata-Flavor") != "Google":
                    server.flavorless += 1
                    self._send(403, b"Missing Metadata-Flavor:Google header.", "text/plain")
                elif url.path == "/":
                    self._send(200, b"", "application/text")
                elif url.path == SERVICE_ACCOUNT_PATH:
                    info = {"email": SERVICE_ACCOUNT, "aliases": ["default"], "scopes": []}
                    self._send(200, json.dumps(info).encode(), "application/json")
                elif url.path == IDENTITY_PATH:
                    audience = urllib.parse.parse_qs(url.query).get("audience", [""])[0]
                    server.audiences.append(audience)
                    if server.identity_status != 200:
                        self._send(server.identity_status, b"no identity here", "text/plain")
                    else:
                        self._send(200, server._token(audience).encode(), "text/html")
                else:
                    self._send(404, b"not found", "text/plain")

        return Handler
