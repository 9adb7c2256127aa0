"""May an environment be deployed now? Freeze windows decide, with two ways through.

The freeze rules are envctl's (``envctl.freeze``): the same windows that make
``set-image`` and ``promote`` refuse to write make the deploy refuse to apply. Inside an
open window a deploy goes through only when

(a) the environment file at ``head`` says exactly what a release the deploy record shows
    ``succeeded`` in this environment said (same state digest: images and config), and
    no shared stack path (``modules/``) changed since ``base`` (the push's start, or
    else the last recorded deploy): a return to a known good state; or
(b) the file at ``head`` carries an ``override`` that is in force (reason, by, expires
    at most 24 h ahead), which its pull request reviewed and its plan comment showed.

Both are decided from the file and the record, never from commit messages or trailers,
so they hold the same for squash, merge-commit and rebase merges, and a trailer typed
into a commit message opens nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl import gitrepo
from envctl.ci.changed import SHARED_PREFIXES, changed_paths
from envctl.clock import rfc3339
from envctl.errors import EnvctlError
from envctl.freeze import active_override, describe_override, open_window, window_end
from envctl.history import Ledger, short
from envctl.load import check_name, env_file, parse_environment
from envctl.records import state_digest


@dataclass(frozen=True)
class Decision:
    environment: str
    allowed: bool
    reason: str
    window: dict[str, Any] | None = None
    way: str | None = None  # None, "known-good" or "override"

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "allowed": self.allowed,
            "reason": self.reason,
            "window": self.window,
            "way": self.way,
        }


def decide(
    repo_root: Path, name: str, now: dt.datetime, base: str | None = None, head: str = "HEAD"
) -> Decision:
    text = gitrepo.show(repo_root, head, env_file(check_name(name)))
    if text is None:
        raise EnvctlError(f"{env_file(name)}: no such environment at {head}")
    env = parse_environment(repo_root, name, text)
    found = open_window(env, now)
    if found is None:
        return Decision(name, True, f"{name}: no freeze window is open")
    index, window = found
    where = f"{env.file}: freeze[{index}]: {name} is frozen until {window_end(window)}"
    override = active_override(env, now)
    if override is not None:
        return Decision(
            name, True, f"{where}, but {describe_override(override)}", window, "override"
        )
    ledger = Ledger(repo_root, name, head)
    good = ledger.succeeded_with_state(state_digest(env.data))
    if good is not None:
        since = base or (ledger.records[0].commit if ledger.records else None)
        paths = changed_paths(repo_root, since, head)
        shared = None if paths is None else [p for p in paths if p.startswith(SHARED_PREFIXES)]
        win = good.last_success()
        if shared == [] and win is not None:
            return Decision(
                name,
                True,
                f"{where}, but the file is release {short(good.id)} again, which succeeded in "
                f"{name} at {rfc3339(win.time)}: a return to a known good release",
                window,
                "known-good",
            )
        held = (
            f"{shared[0]} changed as well"
            if shared
            else "what changed since the last deploy is unknown"
        )
        return Decision(
            name,
            False,
            f"{where} ({window['reason']}); the file is release {short(good.id)} again, but "
            f"{held}; deploy refused. A rollback carries no stack change.",
            window,
        )
    return Decision(
        name,
        False,
        f"{where} ({window['reason']}); deploy refused: the file is not a release the deploy "
        f"record shows succeeded in {name}, and it carries no override in force. Roll back "
        f"with envctl rollback {name}, add an override {{reason, by, expires}} (at most 24 h) "
        "in a reviewed PR, or re-run this workflow after the window closes.",
        window,
    )
