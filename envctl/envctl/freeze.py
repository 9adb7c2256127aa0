"""Deploy freeze windows, and the two ways through one.

Windows are UTC. A one-off window {start, end, reason} is open for start <= now < end; a
weekly one {days, from, until, reason} on those weekdays for from <= HH:MM < until.

While a window is open, only two things go through (the deploy gate, ``envctl.ci.gate``,
and the writing commands apply the same rule):

* a return to a release the deploy record shows ``succeeded`` in this environment
  (``envctl rollback`` writes only those), decided from the file and the record;
* an ``override: {reason, by, expires}`` entry in the environment file, reviewed in its
  pull request like any change, shown by ``envctl diff`` and so in the plan comment, and
  active until ``expires`` (at most 24 hours ahead when it is written: policy rule
  ``override-expiry``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from envctl.clock import NOW_VARIABLE, now_utc, parse_time, rfc3339
from envctl.errors import EnvctlError
from envctl.model import Environment

__all__ = ["NOW_VARIABLE", "active_override", "now_utc", "open_window", "refuse_if_frozen"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OVERRIDE_LIMIT = dt.timedelta(hours=24)


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


def window_end(window: dict[str, Any]) -> str:
    return str(window.get("end") or f"{window['until']} UTC")


def active_override(env: Environment, now: dt.datetime) -> dict[str, Any] | None:
    """The file's ``override`` entry while it is in force (until ``expires``)."""
    entry = env.data.get("override")
    if not isinstance(entry, dict):
        return None
    expires = parse_time(str(entry.get("expires", "")))
    if expires is None or expires.tzinfo is None or now >= expires:
        return None
    if expires - now > OVERRIDE_LIMIT:  # validate refuses it; never honour it either
        return None
    return entry


def describe_override(entry: dict[str, Any]) -> str:
    expires = parse_time(str(entry["expires"]))
    until = rfc3339(expires) if expires else entry["expires"]
    return f"override by {entry['by']} until {until} ({entry['reason']})"


def refuse_if_frozen(env: Environment, now: dt.datetime, action: str) -> None:
    """``action`` (set-image, promote) is refused in an open window without an override."""
    found = open_window(env, now)
    if found is None or active_override(env, now) is not None:
        return
    i, window = found
    raise EnvctlError(
        f"{env.file}: freeze[{i}]: {env.name} is frozen until {window_end(window)} "
        f"({window['reason']}); {action} refused. A rollback to a release that succeeded "
        f"in {env.name} still goes through, and so does a change whose file carries an "
        "override {reason, by, expires} reviewed in its pull request."
    )
