"""The request id: one value on every log line of one request, in both services.

It lives in a contextvar, so it follows a request through ``await``s in the
console and through the handler thread in the pipeline, and travels between
them as the ``x-request-id`` gRPC metadata entry (HTTP header on the console).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token

# gRPC metadata keys are lower case; HTTP header names are case-insensitive.
REQUEST_ID_HEADER = "x-request-id"

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# An id from outside is logged verbatim, so keep it short and printable: a
# client must not be able to forge log structure or flood a line.
_SAFE = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
# Seeded from os.urandom at start-up; a fresh id needs no system call.
_random = random.Random()  # noqa: S311  # request ids are not secrets


def new_request_id() -> str:
    # 128 random bits as 32 hex digits, like uuid4().hex but without building a
    # UUID: one is made for every call that arrives without an id (ADR 0026).
    # An id names a request in the logs; it is no secret.
    return f"{_random.getrandbits(128):032x}"


def sanitise_request_id(value: str | None) -> str:
    """The caller's id when it is safe to log, else a fresh one."""
    if value and _SAFE.match(value):
        return value
    return new_request_id()


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(request_id: str) -> Token[str | None]:
    """Make `request_id` current; give the token to :func:`reset_request_id`."""
    return _request_id.set(request_id)


def reset_request_id(token: Token[str | None]) -> None:
    # A streaming handler's generator may be closed (garbage-collected) in
    # another context, where this token cannot be reset and needs not be.
    with suppress(ValueError):
        _request_id.reset(token)


@contextmanager
def request_id_scope(request_id: str) -> Iterator[str]:
    token = set_request_id(request_id)
    try:
        yield request_id
    finally:
        reset_request_id(token)
