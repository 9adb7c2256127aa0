"""The one clock every time-based decision reads: freezes, overrides, soak, records.

``$ENVCTL_NOW`` (RFC 3339 with an offset) replaces the real clock, so a decision can be
replayed at a given time (tests, and a person asking "would this pass on Friday?").
"""

from __future__ import annotations

import datetime as dt
import os

from envctl.errors import EnvctlError

NOW_VARIABLE = "ENVCTL_NOW"


def parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def now_utc() -> dt.datetime:
    """The current time, or ``$ENVCTL_NOW`` (RFC 3339) to replay a decision at a given time."""
    override = os.environ.get(NOW_VARIABLE)
    if override:
        parsed = parse_time(override)
        if parsed is None or parsed.tzinfo is None:
            raise EnvctlError(f"{NOW_VARIABLE}={override!r} is not an RFC 3339 time with offset")
        return parsed.astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


def rfc3339(moment: dt.datetime) -> str:
    """``moment`` in UTC to the second, as ``2026-06-10T10:00:00Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> dt.timedelta | None:
    """``30m``, ``2h``, ``1d`` as a timedelta; None for anything else."""
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit():
        return None
    return dt.timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])
