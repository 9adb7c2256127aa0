"""One error shape for every failure: ``{"error": {"code", "message"}}``.

gRPC statuses from the pipeline, FastAPI's own validation errors and 404s,
and any unexpected exception all end here, so a client (and the dashboard)
handles one shape and never sees a traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. pipeline_unavailable")
    message: str = Field(description="What went wrong, for a person")


class ErrorBody(BaseModel):
    error: ErrorDetail


class ConsoleError(Exception):
    """An error the console answers with a given HTTP status and code."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


# What each status means on this API; used for the OpenAPI descriptions.
_DESCRIPTIONS: dict[int, str] = {
    400: "The request or the uploaded feed is invalid",
    404: "No such run (or its output is no longer kept)",
    408: "The request body stopped arriving, or took too long; the connection is closed",
    409: "The run has no output (still running or failed)",
    413: "The upload is larger than the limit",
    429: "The pipeline is busy with other runs; retry later",
    500: "Unexpected console error (details are in the logs, never in the body)",
    502: "The pipeline failed, or answered what the console cannot read (details in the logs)",
    503: (
        "The pipeline is unreachable, timed out, or refused the console's credentials; "
        "or the console is shutting down"
    ),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the error body per status."""
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}


# Every route that calls the pipeline can fail these ways.
PIPELINE_ERRORS = (500, 502, 503)


# A reason the pipeline wrote for its callers (INVALID_ARGUMENT, NOT_FOUND,
# FAILED_PRECONDITION, its own RESOURCE_EXHAUSTED) reaches them cut to this
# many characters, on one line: it may quote their input, and the input may
# be huge. Every other status gets a fixed message; its details (an
# exception's text, gRPC core's words, addresses) go to the console's log only.
MAX_REASON_CHARS = 300
# The console's log keeps this much of any details.
MAX_LOGGED_DETAILS_CHARS = 2000

# RESOURCE_EXHAUSTED that gRPC core itself raises (a message or metadata over
# a limit) rather than the pipeline: an answer the console could not read,
# not a busy pipeline.
_CORE_LIMITS = re.compile(r"larger than max|metadata size exceeds", re.IGNORECASE)


def bounded(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters (ending in "…" if cut)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _looks_like_size_cap(message: str) -> bool:
    # The pipeline says "upload too large: ..." for its upload cap and
    # "... runs already in progress ..." when it is busy; both are
    # RESOURCE_EXHAUSTED, but only the first is the client's fault.
    lowered = message.lower()
    return "too large" in lowered or "too big" in lowered


def from_rpc_error(err: grpc.aio.AioRpcError, *, connection_failing: bool = False) -> ConsoleError:
    """Map a failed pipeline call to the console's HTTP answer.

    ``connection_failing``: the channel could not connect when the call gave
    up. A deadline that expires while gRPC is still retrying a refused
    connection is an unreachable pipeline, not a slow one.
    """
    status = err.code()
    reason = bounded(err.details() or status.name)
    match status:
        case grpc.StatusCode.UNAVAILABLE:
            return ConsoleError(503, "pipeline_unavailable", "pipeline unreachable; retry shortly")
        case grpc.StatusCode.DEADLINE_EXCEEDED if connection_failing:
            return ConsoleError(
                503,
                "pipeline_unavailable",
                "pipeline unreachable: no connection before the deadline",
            )
        case grpc.StatusCode.DEADLINE_EXCEEDED:
            return ConsoleError(503, "pipeline_timeout", "pipeline did not answer in time")
        case grpc.StatusCode.INVALID_ARGUMENT:
            return ConsoleError(400, "invalid_argument", reason)
        case grpc.StatusCode.NOT_FOUND:
            return ConsoleError(404, "not_found", reason)
        case grpc.StatusCode.FAILED_PRECONDITION:
            return ConsoleError(409, "failed_precondition", reason)
        case grpc.StatusCode.RESOURCE_EXHAUSTED if _CORE_LIMITS.search(err.details() or ""):
            return ConsoleError(
                502,
                "pipeline_bad_response",
                "the pipeline's answer exceeded a gRPC size limit; see the console's logs",
            )
        case grpc.StatusCode.RESOURCE_EXHAUSTED if _looks_like_size_cap(reason):
            return ConsoleError(413, "upload_too_large", reason)
        case grpc.StatusCode.RESOURCE_EXHAUSTED:
            return ConsoleError(429, "pipeline_busy", reason)
        case grpc.StatusCode.UNAUTHENTICATED | grpc.StatusCode.PERMISSION_DENIED:
            # A deploy problem (wrong audience, missing run.invoker), not the
            # user's: the console cannot serve until it is fixed, hence 503.
            return ConsoleError(
                503,
                "pipeline_auth_failed",
                f"the pipeline refused the console's credentials ({status.name}); "
                "check PIPELINE_AUDIENCE and that the console's service account may invoke it",
            )
        case _:
            return ConsoleError(
                502,
                "pipeline_error",
                f"the pipeline failed on this request ({status.name}); see its logs",
            )


def error_response(status_code: int, code: str, message: str) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return JSONResponse(status_code=status_code, content=body.model_dump())


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_body_timeout",
    413: "upload_too_large",
}


async def _console_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConsoleError)
    return error_response(exc.status_code, exc.code, exc.message)


async def _rpc_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    pipeline = getattr(request.app.state, "pipeline", None)
    failing = pipeline is not None and pipeline.connection_failing()
    mapped = from_rpc_error(exc, connection_failing=failing)
    # An outage is worth a warning; "no such run" is the client's business.
    log.log(
        logging.WARNING if mapped.status_code >= 500 else logging.INFO,
        "%s %s: pipeline answered %s: %s",
        request.method,
        request.url.path,
        exc.code().name,
        bounded(exc.details() or "", MAX_LOGGED_DETAILS_CHARS),
    )
    return error_response(mapped.status_code, mapped.code, mapped.message)


# The methods a 405's Allow header may name.
_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this request's path, for ``Allow``.

    Starlette answers 405 from the first route whose path matched, so its own
    ``Allow`` names that route's methods only (POST for ``/api/runs``, whose
    GET is another route). Each method is tried against every route instead
    (``matches`` is the routes' public API; FastAPI nests included routers)."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    response = error_response(exc.status_code, code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405 and (allowed := allowed_methods(request)):
        response.headers["allow"] = allowed
    return response


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    if len(problems) == 1 and problems[0].get("type") == "missing":
        # The common mistake gets its own code: "missing_feed" for a POST
        # /api/runs without the file.
        where, *path = problems[0].get("loc", ("request",))
        name = ".".join(str(p) for p in path) or str(where)
        form = "multipart/form-data field" if where == "body" else f"{where} parameter"
        return error_response(400, f"missing_{name}", f"required {form} '{name}' is missing")
    # One line per problem, "where: what", instead of FastAPI's nested list.
    parts = []
    for problem in problems:
        where = ".".join(str(p) for p in problem.get("loc", ()))
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return error_response(400, "invalid_request", "; ".join(parts) or "invalid request")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log, never into the response.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "unexpected console error; see the console's logs")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ConsoleError, _console_error)
    app.add_exception_handler(grpc.aio.AioRpcError, _rpc_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
