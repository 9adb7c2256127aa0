"""The JSON log formatter: Cloud Logging's special fields, trace and request id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from telemetry import CloudLoggingFormatter, configure_logging, request_id_scope
from telemetry.context import new_request_id, sanitise_request_id
from telemetry.logs import project_from_env


@pytest.fixture
def emit() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter("svc", project="proj"))
    logger = logging.getLogger("telemetry.tests.emit")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_plain_line(emit: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = emit
    logger.warning("hello %s", "world")
    (line,) = lines(stream)
    assert line["severity"] == "WARNING"
    assert line["message"] == "hello world"
    assert str(line["time"]).endswith("Z")
    assert line["service"] == "svc"
    assert line["logger"] == "telemetry.tests.emit"
    assert line["logging.googleapis.com/sourceLocation"]["function"] == "test_plain_line"  # type: ignore[index]
    # No span, no request: no trace fields, no request id.
    assert "logging.googleapis.com/trace" not in line
    assert "request_id" not in line


def test_trace_span_and_request_id(emit: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = emit
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("work") as span, request_id_scope("abc-1"):
        logger.info("inside")
    logger.info("outside")
    inside, outside = lines(stream)
    ctx = span.get_span_context()
    assert inside["logging.googleapis.com/trace"] == f"projects/proj/traces/{ctx.trace_id:032x}"
    assert inside["logging.googleapis.com/spanId"] == f"{ctx.span_id:016x}"
    assert inside["logging.googleapis.com/trace_sampled"] is True
    assert inside["request_id"] == "abc-1"
    assert "logging.googleapis.com/trace" not in outside
    assert "request_id" not in outside


def test_trace_without_project_is_the_bare_id() -> None:
    formatter = CloudLoggingFormatter("svc", project=None)
    assert formatter.trace_field("ab" * 16) == "ab" * 16


def test_extra_fields_and_http_request(emit: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = emit
    logger.info("GET /", extra={"httpRequest": {"requestMethod": "GET", "status": 200}})
    (line,) = lines(stream)
    assert line["httpRequest"] == {"requestMethod": "GET", "status": 200}


def test_exception_goes_to_stack_trace(emit: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = emit
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    (line,) = lines(stream)
    assert line["severity"] == "ERROR"
    assert line["message"] == "failed"
    assert "RuntimeError: boom" in str(line["stack_trace"])


def test_configure_logging_routes_everything_through_one_handler() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure_logging("svc", stream=stream, project="p")
        logging.getLogger("uvicorn.error").info("started")
        logging.getLogger("anything").debug("hidden at INFO")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    (line,) = lines(stream)
    assert line["message"] == "started"
    assert line["logger"] == "uvicorn.error"


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("abc-123", True),
        ("0123456789abcdef0123456789abcdef", True),
        ("", False),
        (None, False),
        ("has space", False),
        ('quote"brace}', False),
        ("x" * 129, False),
    ],
)
def test_request_ids_from_outside_are_kept_only_when_safe(value: str | None, kept: bool) -> None:
    result = sanitise_request_id(value)
    assert (result == value) is kept
    assert len(result) <= 128


def test_new_request_ids_differ_and_are_32_hex_digits() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert all(sanitise_request_id(i) == i for i in ids)  # safe to pass on


def test_project_from_env() -> None:
    assert project_from_env({"GOOGLE_CLOUD_PROJECT": "a", "GCP_PROJECT": "b"}) == "a"
    assert project_from_env({"GCP_PROJECT": " b "}) == "b"
    assert project_from_env({}) is None
