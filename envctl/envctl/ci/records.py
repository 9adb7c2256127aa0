"""Read deploy records from the clone: annotated tags ``deploy/ENV/<UTC time>`` whose
message carries the record as JSON (the format is ledger-core's, ADR 0021). Only what the
canary and the Deployments mirror need: the tag, the commit it points at, the record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl import gitrepo

PREFIX = "refs/tags/deploy"


class RecordError(ValueError):
    """A deploy record whose tag message is not a JSON object."""


@dataclass(frozen=True)
class Record:
    tag: str  # deploy/ENV/<time>
    commit: str
    data: dict[str, Any]

    @property
    def result(self) -> str:
        return str(self.data.get("result") or "")


def _json_of(tag: str, message: str) -> dict[str, Any]:
    """The record inside a tag message (a signature or subject around it is allowed)."""
    start, end = message.find("{"), message.rfind("}")
    try:
        if start < 0 or end < start:
            raise ValueError("no JSON object")
        value = json.loads(message[start : end + 1])
    except ValueError as exc:
        raise RecordError(f"{tag}: the deploy record is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise RecordError(f"{tag}: the deploy record is not a JSON object")
    return value


def records(repo: Path, env: str, points_at: str | None = None) -> list[Record]:
    """ENV's deploy records, newest first (the tag names sort by time); ``points_at``:
    only those on that commit."""
    args = [
        "for-each-ref",
        "--sort=-refname",
        "--format=%(refname:strip=2)%00%(*objectname)%00%(contents)%00%00",
    ]
    if points_at:
        args.append(f"--points-at={points_at}")
    out = gitrepo.git(repo, *args, f"{PREFIX}/{env}/")
    found = []
    for entry in out.split("\0\0"):
        name, _, rest = entry.strip("\n").partition("\0")
        commit, _, message = rest.partition("\0")
        if name:
            found.append(Record(name, commit, _json_of(name, message)))
    return found
