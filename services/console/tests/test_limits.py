"""A request body has a bounded time to arrive: a client that declares a body
and sends nothing (or trickles it) gets a JSON 408 and its connection closed,
instead of holding a request (and an upload slot on disk) open for ever."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from pipeline.v1 import pipeline_pb2 as pb
from testkit.servers import ConsoleServer, Launcher, StandInPipeline, start_stand_in

IDLE_S = 1.0
TOTAL_S = 3.0
BOUNDARY = "b0undary"


def _headers(content_length: int | None, path: str = "/api/runs") -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: console",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
    ]
    lines.append(
        f"Content-Length: {content_length}" if content_length else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response(sock: socket.socket, limit_s: float) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, headers, body, closed): everything the console sent until it
    closed the connection or ``limit_s`` passed."""
    sock.settimeout(limit_s)
    data = b""
    closed = False
    try:
        while chunk := sock.recv(65536):
            data += chunk
        closed = True
    except TimeoutError:
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0] else 0
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body, closed


def _assert_408(status: int, headers: dict[str, str], body: bytes, closed: bool) -> None:
    assert status == 408, (status, body)
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "request_body_timeout"
    assert closed, "the console closes the connection after a 408"


class SlowDownload(StandInPipeline):
    """DownloadOutput with pauses longer than the body idle timeout."""

    def DownloadOutput(
        self, request: pb.DownloadOutputRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.DownloadOutputResponse]:
        for _ in range(3):
            yield pb.DownloadOutputResponse(chunk=b"x" * 1000)
            time.sleep(IDLE_S * 1.5)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    launcher = Launcher(tmp_path_factory)
    stand_in = start_stand_in(servicer=SlowDownload())
    try:
        yield launcher.console(
            f"127.0.0.1:{stand_in.port}",
            CONSOLE_BODY_IDLE_TIMEOUT_SECONDS=str(IDLE_S),
            CONSOLE_BODY_TIMEOUT_SECONDS=str(TOTAL_S),
        )
    finally:
        launcher.stop_all()
        stand_in.stop()


def _connect(console: ConsoleServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", console.port), timeout=5)


def test_declared_body_that_never_arrives_is_408_after_the_idle_timeout(
    console: ConsoleServer,
) -> None:
    with _connect(console) as sock:
        sock.sendall(_headers(1_000_000))
        start = time.monotonic()
        answer = _read_response(sock, limit_s=IDLE_S + 10)
        took = time.monotonic() - start
    _assert_408(*answer)
    assert IDLE_S <= took < IDLE_S + 1.5, f"answered after {took:.2f} s"


PREAMBLE = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="feed"; filename="f.zip"\r\n'
    "Content-Type: application/zip\r\n\r\nPK\x03\x04"
).encode()


def test_body_that_stops_half_way_is_408(console: ConsoleServer) -> None:
    with _connect(console) as sock:
        sock.sendall(_headers(1_000_000) + PREAMBLE + b"x" * 100_000)
        start = time.monotonic()
        answer = _read_response(sock, limit_s=IDLE_S + 10)
        took = time.monotonic() - start
    _assert_408(*answer)
    assert took < IDLE_S + 1.5, f"answered after {took:.2f} s"


def test_chunked_body_that_never_ends_is_408(console: ConsoleServer) -> None:
    with _connect(console) as sock:
        sock.sendall(_headers(None) + f"{len(PREAMBLE):x}\r\n".encode() + PREAMBLE + b"\r\n")
        answer = _read_response(sock, limit_s=IDLE_S + 10)
    _assert_408(*answer)


def test_a_trickled_body_is_408_at_the_total_deadline(console: ConsoleServer) -> None:
    # A byte every 0.3 s never trips the idle timeout; the total one ends it.
    # The trickle stops half a second before the total deadline (earlier than
    # the idle timeout would fire): bytes still arriving when the console
    # closes would reset the connection before its answer is read.
    stop = threading.Event()
    until = time.monotonic() + TOTAL_S - 0.5

    def trickle(sock: socket.socket) -> None:
        while not stop.wait(0.3) and time.monotonic() < until:
            try:
                sock.sendall(b"x")
            except OSError:
                return  # closed after the answer

    with _connect(console) as sock:
        sock.sendall(_headers(1_000_000) + PREAMBLE)
        start = time.monotonic()
        sender = threading.Thread(target=trickle, args=(sock,), daemon=True)
        sender.start()
        try:
            answer = _read_response(sock, limit_s=TOTAL_S + 10)
            took = time.monotonic() - start
        finally:
            stop.set()
            sender.join(5)
    _assert_408(*answer)
    assert f"within {TOTAL_S:g} s" in json.loads(answer[2])["error"]["message"]
    assert TOTAL_S <= took < TOTAL_S + 1.5, f"answered after {took:.2f} s"


def test_a_slow_download_is_not_a_slow_body(console: ConsoleServer) -> None:
    # The request's (empty) body is complete: waiting for the client to go
    # away while the output streams is not bounded by the body timeouts.
    with console.client() as client:
        response = client.get(f"/api/runs/{'0' * 32}/output")
    assert response.status_code == 200, response.text
    assert len(response.content) == 3000


def test_a_body_that_arrives_in_time_is_served(console: ConsoleServer) -> None:
    feed = b"PK\x03\x04" + b"x" * 1000
    with console.client() as client:
        response = client.post("/api/runs", files={"feed": ("f.zip", feed, "application/zip")})
    assert response.status_code == 201, response.text
