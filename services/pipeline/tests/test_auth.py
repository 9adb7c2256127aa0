"""Pipeline-side ID-token checks (ADR 0018) against a real server on loopback.

Tokens are signed by a test key; a local endpoint serves its certificate in
Google's format, and the server is pointed at it with
PIPELINE_ID_TOKEN_CERTS_URL, so the whole verification runs with no Google.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from pipeline_server.server import RunningServer
from pipeline_server.settings import SettingsError, load_settings

# The fake issuer is shared with the telemetry and container tests.
from testkit.id_tokens import FakeIssuer

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
