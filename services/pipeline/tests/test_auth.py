"""Pipeline-side ID-token checks (ADR 0018) against a real server on loopback.

Tokens are signed by a test key; a local endpoint serves its certificate in
Google's format, and the server is pointed at it with
PIPELINE_ID_TOKEN_CERTS_URL, so the whole verification runs with no Google.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler

import grpc
import pytest
from google.auth import crypt
from google.auth import jwt as google_jwt
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from pipeline_server.auth import CERTS_TIMEOUT_SECONDS, Certificates, IdTokenVerifier, Verdict
from pipeline_server.server import RunningServer
from pipeline_server.settings import SettingsError, load_settings

# The fake issuer is shared with the telemetry and container tests.
from testkit.http_stub import LoopbackHttpStub
from testkit.id_tokens import KEY_ID, FakeIssuer
from testkit.keys import private_pem, rsa_key, self_signed

AUDIENCE = "https://pipeline-123456789.europe-west1.run.app"
OTHER = "intruder@test-project.iam.gserviceaccount.com"

Serve = Callable[..., tuple[RunningServer, grpc.Channel]]


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as running:
        yield running


@pytest.fixture
def guarded(serve: Serve, issuer: FakeIssuer) -> grpc.Channel:
    _, channel = serve(
        require_id_token=True,
        token_audiences=(AUDIENCE,),
        allowed_invokers=frozenset({issuer.email}),
        id_token_certs_url=issuer.certs_url,
    )
    return channel


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def status_code(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    try:
        pb_grpc.PipelineServiceStub(channel).GetStatus(
            pb.GetStatusRequest(), metadata=metadata, timeout=10
        )
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("case", "expected", "reason"),
    [
        ("valid", grpc.StatusCode.OK, None),
        ("missing", grpc.StatusCode.UNAUTHENTICATED, "no usable bearer token"),
        ("expired", grpc.StatusCode.UNAUTHENTICATED, "Token expired"),
        ("wrong audience", grpc.StatusCode.UNAUTHENTICATED, "wrong audience"),
        ("wrong key", grpc.StatusCode.UNAUTHENTICATED, "Could not verify token signature"),
        ("not allowed", grpc.StatusCode.PERMISSION_DENIED, "not in PIPELINE_ALLOWED_INVOKERS"),
        ("not a jwt", grpc.StatusCode.UNAUTHENTICATED, "segments"),
        ("wrong issuer", grpc.StatusCode.UNAUTHENTICATED, "issuer"),
        ("basic auth", grpc.StatusCode.UNAUTHENTICATED, "no usable bearer token"),
    ],
)
def test_auth_table(
    guarded: grpc.Channel,
    issuer: FakeIssuer,
    caplog: pytest.LogCaptureFixture,
    case: str,
    expected: grpc.StatusCode,
    reason: str | None,
) -> None:
    metadata: tuple[tuple[str, str], ...] = {
        "valid": lambda: bearer(issuer.token(AUDIENCE)),
        "missing": lambda: (),
        "expired": lambda: bearer(issuer.token(AUDIENCE, issued_ago=7200, lifetime=3600)),
        "wrong audience": lambda: bearer(issuer.token("https://console-1.a.run.app")),
        "wrong key": lambda: bearer(issuer.token(AUDIENCE, signer=issuer.other_signer())),
        "not allowed": lambda: bearer(issuer.token(AUDIENCE, email=OTHER)),
        "not a jwt": lambda: bearer("not-a-token"),
        "wrong issuer": lambda: bearer(issuer.token(AUDIENCE, iss="https://evil.example")),
        "basic auth": lambda: (("authorization", "Basic dXNlcjpwYXNz"),),
    }[case]()
    assert status_code(guarded, metadata) == expected
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused GetStatus")]
    if reason is None:
        assert not refusals
    else:
        # The reason is in the log, the token never is.
        assert len(refusals) == 1
        assert reason in refusals[0].getMessage()
        for _, value in metadata:
            assert value.removeprefix("Bearer ") not in caplog.text


def test_short_message_for_the_caller(guarded: grpc.Channel, issuer: FakeIssuer) -> None:
    stub = pb_grpc.PipelineServiceStub(guarded)
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetStatus(pb.GetStatusRequest(), metadata=bearer(issuer.token("https://x")))
    assert refused.value.details() == "invalid ID token"
    with pytest.raises(grpc.RpcError) as denied:
        stub.GetStatus(pb.GetStatusRequest(), metadata=bearer(issuer.token(AUDIENCE, email=OTHER)))
    assert denied.value.details() == "caller is not allowed"


def test_cloud_run_two_header_convention(guarded: grpc.Channel, issuer: FakeIssuer) -> None:
    token = issuer.token(AUDIENCE)
    stripped = token.rsplit(".", 1)[0] + ".SIGNATURE_REMOVED_BY_GOOGLE"
    # What the pipeline sees on Cloud Run: IAM used x-serverless-authorization.
    both = (
        ("x-serverless-authorization", f"Bearer {stripped}"),
        ("authorization", f"Bearer {token}"),
    )
    assert status_code(guarded, both) == grpc.StatusCode.OK
    # A client that sent the token in authorization only: IAM stripped it there.
    assert status_code(guarded, bearer(stripped)) == grpc.StatusCode.UNAUTHENTICATED
    # No Cloud Run in front: x-serverless-authorization still signed is accepted.
    only_serverless = (("x-serverless-authorization", f"Bearer {token}"),)
    assert status_code(guarded, only_serverless) == grpc.StatusCode.OK


def test_health_and_reflection_need_no_token(guarded: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(guarded)
    response = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(guarded)
    answers = list(
        stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
    )
    names = {s.name for s in answers[0].list_services_response.service}
    assert "pipeline.v1.PipelineService" in names


def test_streaming_rpcs_are_guarded(
    guarded: grpc.Channel, issuer: FakeIssuer, tiny_feed: bytes
) -> None:
    stub = pb_grpc.PipelineServiceStub(guarded)

    def upload() -> Iterator[pb.RunPipelineRequest]:
        yield pb.RunPipelineRequest(options=pb.RunOptions(declared_size=len(tiny_feed)))
        yield pb.RunPipelineRequest(chunk=tiny_feed)

    with pytest.raises(grpc.RpcError) as refused:
        stub.RunPipeline(upload(), timeout=30)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as download:
        list(stub.DownloadOutput(pb.DownloadOutputRequest(run_id="x"), timeout=10))
    assert download.value.code() == grpc.StatusCode.UNAUTHENTICATED

    run = stub.RunPipeline(upload(), metadata=bearer(issuer.token(AUDIENCE)), timeout=60)
    assert run.status == pb.RUN_STATUS_COMPLETED
    chunks = stub.DownloadOutput(
        pb.DownloadOutputRequest(run_id=run.run_id),
        metadata=bearer(issuer.token(AUDIENCE)),
        timeout=10,
    )
    assert b"".join(c.chunk for c in chunks)[:2] == b"PK"


def test_certificates_are_fetched_once_and_tokens_verified_once(
    guarded: grpc.Channel, issuer: FakeIssuer
) -> None:
    token = issuer.token(AUDIENCE)
    for _ in range(5):
        assert status_code(guarded, bearer(token)) == grpc.StatusCode.OK
    for _ in range(3):
        assert status_code(guarded, bearer(issuer.token(AUDIENCE))) == grpc.StatusCode.OK
    assert issuer.cert_fetches == 1


def test_unreachable_certificates_are_unavailable_not_unauthenticated(
    serve: Serve, issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _, channel = serve(
        require_id_token=True,
        token_audiences=(AUDIENCE,),
        allowed_invokers=frozenset({issuer.email}),
        id_token_certs_url="http://127.0.0.1:9/certs",  # discard port: refused
    )
    assert status_code(channel, bearer(issuer.token(AUDIENCE))) == grpc.StatusCode.UNAVAILABLE
    assert "certificates unavailable" in caplog.text


def test_without_require_id_token_no_token_is_needed(serve: Serve) -> None:
    _, channel = serve()
    assert status_code(channel, ()) == grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (
            {"PIPELINE_REQUIRE_ID_TOKEN": "true", "PIPELINE_ALLOWED_INVOKERS": "a@b"},
            "PIPELINE_TOKEN_AUDIENCE",
        ),
        (
            {"PIPELINE_REQUIRE_ID_TOKEN": "true", "PIPELINE_TOKEN_AUDIENCE": AUDIENCE},
            "PIPELINE_ALLOWED_INVOKERS",
        ),
        ({"PIPELINE_REQUIRE_ID_TOKEN": "maybe"}, "PIPELINE_REQUIRE_ID_TOKEN"),
        ({"PIPELINE_ID_TOKEN_CERTS_URL": "ftp://x"}, "PIPELINE_ID_TOKEN_CERTS_URL"),
    ],
)
def test_settings_refuse_incomplete_auth(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(env)


def test_settings_parse_lists() -> None:
    settings = load_settings(
        {
            "PIPELINE_REQUIRE_ID_TOKEN": "true",
            "PIPELINE_TOKEN_AUDIENCE": f"{AUDIENCE}, https://pipeline-abc-ew.a.run.app",
            "PIPELINE_ALLOWED_INVOKERS": "A@example.com, b@example.com,",
        }
    )
    assert settings.require_id_token
    assert settings.token_audiences == (AUDIENCE, "https://pipeline-abc-ew.a.run.app")
    assert settings.allowed_invokers == {"a@example.com", "b@example.com"}


# --- Decided locally first (issue 17, row 11 and item 5) ---------------------
#
# Everything a token says about itself is checked before any network: a token
# that fails those checks is refused in milliseconds even when the certificates
# endpoint accepts connections and never answers. Only a token that passes them
# costs a certificate fetch, which is single-flight, bounded in time, and whose
# failure is remembered briefly.


class BlackHole:
    """A real listening socket on loopback that accepts connections and never
    answers (what a hung issuer or a dropped route looks like to a client)."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/oauth2/v1/certs"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


class SwitchableIssuer(LoopbackHttpStub):
    """Serves `issuer`'s certificates, or hangs without answering, or answers
    503: an issuer that goes away and comes back, on one URL."""

    def __init__(self, issuer: FakeIssuer, *, max_age: int = 3600) -> None:
        self.mode = "up"
        self.requests = 0
        self.release = threading.Event()
        body = json.dumps({KEY_ID: self_signed(issuer.key, "test-issuer").decode()}).encode()
        switch = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                switch.requests += 1
                if switch.mode == "hang":
                    switch.release.wait(30)
                    return
                status = 200 if switch.mode == "up" else 503
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", f"public, max-age={max_age}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return f"http://{self.host}/oauth2/v1/certs"

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        super().__exit__(*exc)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, object], claims: dict[str, object], signature: bytes = b"x") -> str:
    """An unsigned (or self-signed) token with any header and claims."""
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    )


def good_claims(issuer: FakeIssuer, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "sub": "1",
        "email": issuer.email,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
    }
    return {**claims, **overrides}


def hs256(issuer: FakeIssuer) -> str:
    """The classic algorithm confusion: HMAC keyed with the public certificate."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KEY_ID}).encode())
    payload = b64(json.dumps(good_claims(issuer)).encode())
    key = self_signed(issuer.key, "test-issuer")
    mac = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


YEAR = 365 * 24 * 3600

LOCAL_REFUSALS: dict[str, tuple[Callable[[FakeIssuer], str], str]] = {
    "not a jwt": (lambda i: "not-a-token", "segments"),
    "four segments": (lambda i: "a.b.c.d", "segments"),
    "not base64": (lambda i: "a*b.c$d.e!f", "base64url"),
    "header not json": (lambda i: f"{b64(b'{nope')}.{b64(b'{}')}.{b64(b'x')}", "JSON"),
    "header a list": (lambda i: f"{b64(b'[1]')}.{b64(b'{}')}.{b64(b'x')}", "JSON object"),
    "deep nesting": (lambda i: f"{b64(b'[' * 3000)}.{b64(b'{}')}.{b64(b'x')}", "JSON"),
    # Under gRPC's own 8 KiB metadata limit, over ours.
    "huge": (lambda i: "a." * 3000 + "a", "characters"),
    "alg none": (
        lambda i: forge({"alg": "none", "kid": KEY_ID}, good_claims(i), b""),
        "algorithm 'none'",
    ),
    "alg none, signature": (
        lambda i: forge({"alg": "none", "kid": KEY_ID}, good_claims(i)),
        "algorithm 'none'",
    ),
    "alg HS256": (hs256, "algorithm 'HS256'"),
    "no alg": (lambda i: forge({"kid": KEY_ID}, good_claims(i)), "algorithm None"),
    "no kid": (lambda i: forge({"alg": "RS256"}, good_claims(i)), "key id"),
    "kid not a string": (lambda i: forge({"alg": "RS256", "kid": 7}, good_claims(i)), "key id"),
    "crit header": (
        lambda i: forge({"alg": "RS256", "kid": KEY_ID, "crit": ["exp"]}, good_claims(i)),
        "crit",
    ),
    "no signature": (
        lambda i: forge({"alg": "RS256", "kid": KEY_ID}, good_claims(i), b""),
        "signature",
    ),
    "wrong issuer": (lambda i: i.token(AUDIENCE, iss="https://evil.example"), "issuer"),
    "wrong audience": (lambda i: i.token("https://console-1.a.run.app"), "wrong audience"),
    "audience list": (lambda i: i.token([AUDIENCE]), "wrong audience"),  # type: ignore[arg-type]
    "expired": (lambda i: i.token(AUDIENCE, issued_ago=7200, lifetime=3600), "Token expired"),
    "issued in the future": (lambda i: i.token(AUDIENCE, issued_ago=-600), "future"),
    "exp 100 years ahead": (lambda i: i.token(AUDIENCE, lifetime=100 * YEAR), "lifetime"),
    "lifetime 2 h": (lambda i: i.token(AUDIENCE, lifetime=7200), "lifetime"),
    "exp 2 h ahead, no iat": (
        lambda i: forge({"alg": "RS256", "kid": KEY_ID}, good_claims(i, iat=None)),
        "iat",
    ),
    "exp a string": (lambda i: i.token(AUDIENCE, exp="9999999999"), "exp"),
    "exp a boolean": (lambda i: i.token(AUDIENCE, exp=True), "exp"),
    "email_verified a string": (
        lambda i: i.token(AUDIENCE, email_verified="false"),
        "email_verified",
    ),
    "email_verified a string true": (
        lambda i: i.token(AUDIENCE, email_verified="true"),
        "email_verified",
    ),
    "email a list": (lambda i: i.token(AUDIENCE, email=[i.email]), "email"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", LOCAL_REFUSALS)
def test_tokens_are_refused_locally_with_the_issuer_hanging(
    serve: Serve,
    issuer: FakeIssuer,
    black_hole: BlackHole,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    make, reason = LOCAL_REFUSALS[case]
    token = make(issuer)
    _, channel = serve(
        require_id_token=True,
        token_audiences=(AUDIENCE,),
        allowed_invokers=frozenset({issuer.email}),
        id_token_certs_url=black_hole.url,
    )
    started = time.monotonic()
    assert status_code(channel, bearer(token)) == grpc.StatusCode.UNAUTHENTICATED
    # Microseconds of work; the bound leaves room for a loaded machine and is
    # still below one certificate fetch's timeout.
    assert time.monotonic() - started < CERTS_TIMEOUT_SECONDS / 2
    assert black_hole.connections == []  # decided with no network at all
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused GetStatus")]
    assert len(refusals) == 1
    assert reason in refusals[0].getMessage()
    assert token not in caplog.text


def test_email_verified_false_or_missing_is_denied(
    guarded: grpc.Channel, issuer: FakeIssuer
) -> None:
    assert status_code(guarded, bearer(issuer.token(AUDIENCE, email_verified=False))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com", "aud": AUDIENCE, "sub": "1",
        "email": issuer.email, "iat": now, "exp": now + 3600,
    }  # fmt: skip
    token = google_jwt.encode(issuer._signer, claims).decode()  # type: ignore[no-untyped-call]
    assert status_code(guarded, bearer(token)) == grpc.StatusCode.PERMISSION_DENIED


def test_a_google_lifetime_within_clock_skew_is_accepted(
    guarded: grpc.Channel, issuer: FakeIssuer
) -> None:
    # Google's ID tokens last exactly an hour; this instance's clock may be a
    # few seconds behind the issuer's.
    for token in (
        issuer.token(AUDIENCE, lifetime=3600),
        issuer.token(AUDIENCE, issued_ago=-5, lifetime=3600),
        issuer.token(AUDIENCE, issued_ago=3590, lifetime=3600),
    ):
        assert status_code(guarded, bearer(token)) == grpc.StatusCode.OK


def concurrently(
    channel: grpc.Channel, tokens: list[str]
) -> tuple[list[grpc.StatusCode], list[float], list[float]]:
    """Call GetStatus once per token, all at once, while health is checked in a
    loop; returns the codes, each call's latency and each health check's."""
    health = health_pb2_grpc.HealthStub(channel)
    health_latencies: list[float] = []
    done = threading.Event()

    def check_health() -> None:
        while not done.is_set():
            started = time.monotonic()
            health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            health_latencies.append(time.monotonic() - started)
            time.sleep(0.01)

    def call(token: str) -> tuple[grpc.StatusCode, float]:
        barrier.wait()
        started = time.monotonic()
        code = status_code(channel, bearer(token))
        return code, time.monotonic() - started

    barrier = threading.Barrier(len(tokens))
    checker = threading.Thread(target=check_health)
    checker.start()
    try:
        with ThreadPoolExecutor(len(tokens)) as pool:
            results = list(pool.map(call, tokens))
    finally:
        done.set()
        checker.join()
    return [code for code, _ in results], [t for _, t in results], health_latencies


def test_twenty_concurrent_garbage_calls_are_refused_fast_while_health_answers(
    serve: Serve, issuer: FakeIssuer, black_hole: BlackHole
) -> None:
    _, channel = serve(
        require_id_token=True,
        token_audiences=(AUDIENCE,),
        allowed_invokers=frozenset({issuer.email}),
        id_token_certs_url=black_hole.url,
    )
    makers = [make for make, _ in LOCAL_REFUSALS.values()]
    tokens = [makers[n % len(makers)](issuer) for n in range(20)]
    codes, latencies, health = concurrently(channel, tokens)
    print(f"garbage x20: slowest {max(latencies) * 1000:.1f} ms; health slowest "
          f"{max(health) * 1000:.1f} ms over {len(health)} checks")  # fmt: skip
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 20
    assert max(latencies) < CERTS_TIMEOUT_SECONDS / 2
    assert health
    assert max(health) < 1.0
    assert black_hole.connections == []


def test_well_formed_tokens_with_the_issuer_hanging_wait_once_and_briefly(
    serve: Serve, issuer: FakeIssuer, black_hole: BlackHole, caplog: pytest.LogCaptureFixture
) -> None:
    _, channel = serve(
        require_id_token=True,
        token_audiences=(AUDIENCE,),
        allowed_invokers=frozenset({issuer.email}),
        id_token_certs_url=black_hole.url,
    )
    tokens = [issuer.token(AUDIENCE) for _ in range(20)]
    codes, latencies, health = concurrently(channel, tokens)
    print(f"well-formed x20: slowest {max(latencies):.2f} s; health slowest {max(health):.2f} s")
    assert codes == [grpc.StatusCode.UNAVAILABLE] * 20
    # One fetch for all twenty (single-flight), bounded by its timeout.
    assert len(black_hole.connections) == 1
    assert max(latencies) < CERTS_TIMEOUT_SECONDS + 1.0
    assert "certificates unavailable" in caplog.text
    # The failure is remembered: the next caller is told at once, with no new fetch.
    started = time.monotonic()
    assert status_code(channel, bearer(issuer.token(AUDIENCE))) == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started < 0.2
    assert len(black_hole.connections) == 1


def test_an_unknown_key_id_costs_one_fetch_for_concurrent_callers(
    serve: Serve, issuer: FakeIssuer
) -> None:
    _, channel = serve(
        require_id_token=True,
        token_audiences=(AUDIENCE,),
        allowed_invokers=frozenset({issuer.email}),
        id_token_certs_url=issuer.certs_url,
    )
    rotated = crypt.RSASigner.from_string(private_pem(rsa_key()), "rotated-key")  # type: ignore[no-untyped-call]
    tokens = [issuer.token(AUDIENCE, signer=rotated) for _ in range(20)]
    codes, _, _ = concurrently(channel, tokens)
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 20
    assert issuer.cert_fetches == 1
    # Fetched just now: another unknown key id is refused without a refetch.
    assert status_code(channel, bearer(tokens[0])) == grpc.StatusCode.UNAUTHENTICATED
    assert issuer.cert_fetches == 1


def verifier(url: str, issuer: FakeIssuer, **certificates: float) -> IdTokenVerifier:
    return IdTokenVerifier(
        (AUDIENCE,),
        frozenset({issuer.email}),
        url,
        certificates=Certificates(url, **certificates),
    )


def metadata(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_an_unknown_key_id_refetches_once_when_the_certificates_are_old(
    issuer: FakeIssuer,
) -> None:
    check = verifier(issuer.certs_url, issuer, min_refetch=0.2)
    assert check.verify(metadata(issuer.token(AUDIENCE))).code is None
    assert issuer.cert_fetches == 1
    time.sleep(0.3)
    rotated = crypt.RSASigner.from_string(private_pem(rsa_key()), "rotated-key")  # type: ignore[no-untyped-call]
    tokens = [issuer.token(AUDIENCE, signer=rotated) for _ in range(20)]
    barrier = threading.Barrier(20)

    def verify(token: str) -> Verdict:
        barrier.wait()
        return check.verify(metadata(token))

    with ThreadPoolExecutor(20) as pool:
        verdicts = list(pool.map(verify, tokens))
    assert {v.code for v in verdicts} == {grpc.StatusCode.UNAUTHENTICATED}
    assert all("key id" in v.reason for v in verdicts)
    assert issuer.cert_fetches == 2  # one refresh for all twenty
    # The known key still works from the refreshed certificates.
    assert check.verify(metadata(issuer.token(AUDIENCE))).code is None
    assert issuer.cert_fetches == 2


def test_an_issuer_that_comes_back_after_a_remembered_failure(issuer: FakeIssuer) -> None:
    with SwitchableIssuer(issuer) as switch:
        check = verifier(switch.url, issuer, timeout=0.5, failure_memory=0.5)
        switch.mode = "hang"
        started = time.monotonic()
        verdict = check.verify(metadata(issuer.token(AUDIENCE)))
        assert verdict.code == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 1.5
        # Remembered: refused at once, no second request to the issuer.
        switch.mode = "down"
        started = time.monotonic()
        assert check.verify(metadata(issuer.token(AUDIENCE))).code == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 0.1
        assert switch.requests == 1
        time.sleep(0.6)
        # A 503 is a failure too, and remembered as well.
        assert check.verify(metadata(issuer.token(AUDIENCE))).code == grpc.StatusCode.UNAVAILABLE
        assert switch.requests == 2
        time.sleep(0.6)
        switch.mode = "up"
        assert check.verify(metadata(issuer.token(AUDIENCE))).code is None
        assert switch.requests == 3
        assert check.verify(metadata(issuer.token(AUDIENCE))).code is None
        assert switch.requests == 3


def test_stale_certificates_serve_while_a_refresh_hangs(issuer: FakeIssuer) -> None:
    with SwitchableIssuer(issuer, max_age=1) as switch:
        check = verifier(switch.url, issuer, timeout=2.0)
        assert check.verify(metadata(issuer.token(AUDIENCE))).code is None
        time.sleep(1.1)
        switch.mode = "hang"
        started = time.monotonic()
        # Expired by max-age, the known key is still used: nobody waits for the refresh.
        assert check.verify(metadata(issuer.token(AUDIENCE))).code is None
        assert time.monotonic() - started < 0.2
        assert check.verify(metadata(issuer.token(AUDIENCE))).code is None
        time.sleep(0.2)
        assert switch.requests == 2  # one background refresh, not one per call
