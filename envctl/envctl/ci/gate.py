"""May an environment be deployed now? Freeze windows decide; a rollback always may.

The freeze rules themselves are envctl's (``envctl.freeze``): the same windows that make
``set-image`` and ``promote`` refuse to write make the deploy refuse to apply. A change
merged before a window opened is still held back once it is open; only a rollback goes
through, because a rollback is how an incident is fixed during a freeze. "A rollback"
means: in ``base..head`` the newest commit to the environment's file is one that
``envctl rollback`` wrote (recognised by its trailer), and no shared stack path changed
(a module change rides along with nothing, not even a rollback).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl import gitrepo
from envctl.ci.changed import SHARED_PREFIXES, changed_paths
from envctl.freeze import open_window
from envctl.history import ACTION
from envctl.load import env_file, load_environment


@dataclass(frozen=True)
class Decision:
    environment: str
    allowed: bool
    reason: str
    window: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "allowed": self.allowed,
            "reason": self.reason,
            "window": self.window,
        }


def is_rollback(repo_root: Path, name: str, base: str | None, head: str = "HEAD") -> bool:
    """Whether ``base..head`` deploys ``name`` only because ``envctl rollback`` changed it."""
    paths = changed_paths(repo_root, base, head)
    if paths is None or any(p.startswith(SHARED_PREFIXES) for p in paths):
        return False
    merge_base = gitrepo.git(repo_root, "merge-base", str(base), head).strip()
    newest = gitrepo.git(
        repo_root,
        "log",
        "-1",
        f"--format=%(trailers:key={ACTION},valueonly,separator=%x2C)",
        f"{merge_base}..{head}",
        "--",
        env_file(name),
    )
    return newest.strip() == "rollback"


def decide(
    repo_root: Path, name: str, now: dt.datetime, base: str | None = None, head: str = "HEAD"
) -> Decision:
    env = load_environment(repo_root, name)
    found = open_window(env, now)
    if found is None:
        return Decision(name, True, f"{name}: no freeze window is open")
    index, window = found
    until = window.get("end") or f"{window['until']} UTC"
    where = f"{env.file}: freeze[{index}]"
    if is_rollback(repo_root, name, base, head):
        return Decision(
            name, True, f"{where}: frozen until {until}, but this is a rollback", window
        )
    return Decision(
        name,
        False,
        f"{where}: {name} is frozen until {until} ({window['reason']}); deploy refused. "
        "Re-run this workflow after the window closes, or roll back with envctl rollback.",
        window,
    )
