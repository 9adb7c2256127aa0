"""Every gRPC status the pipeline may answer has one HTTP answer; anything
unexpected in the console is a JSON 500 without a traceback."""

from __future__ import annotations

import grpc
import httpx
import pytest

from console_server.app import create_app
from console_server.errors import from_rpc_error
from console_server.settings import Settings

S = grpc.StatusCode


def rpc_error(code: grpc.StatusCode, details: str = "detail") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


@pytest.mark.parametrize(
    ("code", "details", "status", "error_code"),
    [
        (S.UNAVAILABLE, "connection refused", 503, "pipeline_unavailable"),
        (S.DEADLINE_EXCEEDED, "Deadline Exceeded", 503, "pipeline_timeout"),
        (S.INVALID_ARGUMENT, "invalid feed: no stops.txt", 400, "invalid_argument"),
        (S.NOT_FOUND, "no run 'x'", 404, "not_found"),
        (S.FAILED_PRECONDITION, "run x has no output", 409, "failed_precondition"),
        (S.RESOURCE_EXHAUSTED, "upload too large: 9 bytes declared", 413, "upload_too_large"),
        (S.RESOURCE_EXHAUSTED, "2 runs already in progress", 429, "pipeline_busy"),
        (S.UNAUTHENTICATED, "bad token", 503, "pipeline_auth_failed"),
        (S.PERMISSION_DENIED, "not an invoker", 503, "pipeline_auth_failed"),
        (S.INTERNAL, "boom", 502, "pipeline_error"),
        (S.UNKNOWN, "boom", 502, "pipeline_error"),
        (S.UNIMPLEMENTED, "no such method", 502, "pipeline_error"),
    ],
)
def test_status_mapping(code: grpc.StatusCode, details: str, status: int, error_code: str) -> None:
    mapped = from_rpc_error(rpc_error(code, details))
    assert (mapped.status_code, mapped.code) == (status, error_code)
    if status in (400, 404, 409, 413, 429):
        # The pipeline's words reach the user unchanged.
        assert mapped.message == details
    else:
        assert details in mapped.message


def test_deadline_while_the_connection_fails_is_unavailable() -> None:
    mapped = from_rpc_error(rpc_error(S.DEADLINE_EXCEEDED), connection_failing=True)
    assert (mapped.status_code, mapped.code) == (503, "pipeline_unavailable")


def test_auth_failure_says_what_to_check() -> None:
    message = from_rpc_error(rpc_error(S.UNAUTHENTICATED)).message
    assert "PIPELINE_AUDIENCE" in message


async def _unexpected() -> None:
    raise RuntimeError("secret internals")


def test_unexpected_exception_is_a_json_500_without_traceback() -> None:
    app = create_app(Settings(pipeline_addr="127.0.0.1:9"))
    app.add_api_route("/boom", _unexpected)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            return await client.get("/boom")

    import asyncio

    response = asyncio.run(call())
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "unexpected console error; see the console's logs",
        }
    }
    assert "secret internals" not in response.text
