"""Deploy freeze windows: is one open now?

Windows are UTC. A one-off window {start, end, reason} is open for start <= now < end; a
weekly one {days, from, until, reason} on those weekdays for from <= HH:MM < until.
set-image and promote refuse inside an open window; rollback is always allowed.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from envctl.errors import EnvctlError
from envctl.model import Environment
from envctl.policy import parse_time

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NOW_VARIABLE = "ENVCTL_NOW"


def now_utc() -> dt.datetime:
    """The current time, or ``$ENVCTL_NOW`` (RFC 3339) to replay a decision at a given time."""
    override = os.environ.get(NOW_VARIABLE)
    if override:
        parsed = parse_time(override)
        if parsed is None or parsed.tzinfo is None:
            raise EnvctlError(f"{NOW_VARIABLE}={override!r} is not an RFC 3339 time with offset")
        return parsed.astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


def open_window(env: Environment, now: dt.datetime) -> tuple[int, dict[str, Any]] | None:
    """(index, window) of the first freeze window of ``env`` open at ``now``, if any."""
    now = now.astimezone(dt.UTC)
    clock = now.strftime("%H:%M")
    for i, window in enumerate(env.data.get("freeze", [])):
        if "start" in window:
            start, end = parse_time(window["start"]), parse_time(window["end"])
            if start is not None and end is not None and start <= now < end:
                return i, window
        elif DAYS[now.weekday()] in window["days"] and window["from"] <= clock < window["until"]:
            return i, window
    return None


def refuse_if_frozen(env: Environment, now: dt.datetime, action: str) -> None:
    found = open_window(env, now)
    if found is None:
        return
    i, window = found
    until = window.get("end") or f"{window['until']} UTC"
    raise EnvctlError(
        f"{env.file}: freeze[{i}]: {env.name} is frozen until {until} ({window['reason']}); "
        f"{action} refused. A rollback is still allowed."
    )
