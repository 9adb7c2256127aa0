"""Which calls get the services' own access log line: the failed and the slow.

Cloud Run writes a request log line for every request itself, and every call is
in the duration histograms (``rpc.server.duration``, ``http.server.request.duration``)
and has its span; a line per *successful, fast* call repeats them and was the
largest single cost of a warm GetDag (~33 µs of JSON per call, ADR 0026). So the
gRPC interceptor and the console's middleware write a line for a call that
failed (any gRPC status but OK, any HTTP status from 400) or took at least
``ACCESS_LOG_SLOW_MS`` milliseconds (default 250; ``0`` logs every call).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)

SLOW_MS_VAR = "ACCESS_LOG_SLOW_MS"
DEFAULT_SLOW_MS = 250.0


def slow_call_seconds(environ: Mapping[str, str] | None = None) -> float:
    """The threshold from ``ACCESS_LOG_SLOW_MS``, in seconds; a bad value warns and
    keeps the default (a logging setting never stops a service from starting)."""
    env = os.environ if environ is None else environ
    raw = env.get(SLOW_MS_VAR, "").strip()
    if not raw:
        return DEFAULT_SLOW_MS / 1000
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        log.warning(
            "%s=%s is not a number of milliseconds (0 or more): logging calls slower than %g ms",
            SLOW_MS_VAR,
            raw,
            DEFAULT_SLOW_MS,
        )
        return DEFAULT_SLOW_MS / 1000
    return value / 1000


def worth_a_line(failed: bool, seconds: float, slow_seconds: float) -> bool:
    """A failed call always; a successful one only when it was slow."""
    return failed or seconds >= slow_seconds
