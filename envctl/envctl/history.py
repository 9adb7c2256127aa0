"""An environment's releases (desired state) beside its deploy records (observed state).

A **release** is one version of ``environments/ENV.yaml`` on the first-parent line of
main: every service's image and the whole config, as one unit. Its **id** is the full
SHA of the main commit that made it (the squash commit, the merge commit, or for a
rebase merge the rebased commit), shown as 12 hex digits; ``--to`` / ``--release``
accept that id, any prefix of it that names one release of ENV, or the full SHA of any
commit on main (the release in effect at that commit). Image commits never name a
release: one image is in many releases. A commit that changes only comments is not a
release (it deploys nothing new).

The **ledger** joins releases and records (``envctl.records``): each record's commit is
placed on the first-parent line and belongs to the release in effect there. A release
"succeeded" when a record says so. A release is **rolled back** when a later release
returns the file to an earlier release that succeeded (the same state digest, decided
from the files, never from commit messages): every release in between is marked with
the release that rolled it back. Commit trailers are written for people, never read.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from envctl import gitrepo
from envctl.clock import rfc3339
from envctl.errors import EnvctlError
from envctl.load import env_file
from envctl.model import Image
from envctl.records import Record, read_records, state_digest, warn
from envctl.yamlio import decode, parse, to_plain

# Trailers envctl writes into its commits for people reading git log (never parsed).
ACTION = "Envctl-Action"
SOURCE = "Envctl-Source"
RELEASE = "Envctl-Release"
ROLLED_BACK = "Envctl-Rolled-Back"

ImageSet = tuple[tuple[str, str, str | None], ...]
_HEX = re.compile(r"^[0-9a-f]{7,40}$")


def image_set(images: dict[str, Image]) -> ImageSet:
    return tuple(sorted((name, i.commit, i.digest) for name, i in images.items()))


def short(sha: str) -> str:
    return sha[:12]


@dataclass(frozen=True)
class Release:
    id: str  # full SHA of the main commit that made this version of the file
    merged_at: str  # committer date: when it reached main
    author: str
    subject: str
    text: str  # the file as it was
    data: dict[str, Any]
    state: str  # records.state_digest(data)
    images: dict[str, Image]

    @property
    def key(self) -> ImageSet:
        return image_set(self.images)


@dataclass
class ReleaseStatus:
    """One release with what the records say about it."""

    release: Release
    records: list[Record] = field(default_factory=list)  # newest first
    rolled_back_by: str | None = None  # id of the release that rolled it back
    restores: str | None = None  # id of the earlier release this one returns to

    @property
    def id(self) -> str:
        return self.release.id

    @property
    def succeeded(self) -> bool:
        return any(r.succeeded for r in self.records)

    def first_success(self) -> Record | None:
        wins = [r for r in self.records if r.succeeded]
        return wins[-1] if wins else None

    def last_success(self) -> Record | None:
        return next((r for r in self.records if r.succeeded), None)

    def observed(self) -> str:
        """In words: what the records say about this release."""
        if not self.records:
            return "not deployed yet"
        last = self.records[0]
        return f"{last.result} at {rfc3339(last.time)}"

    def as_dict(self) -> dict[str, Any]:
        r = self.release
        last = self.records[0] if self.records else None
        win = self.last_success()
        return {
            "release": r.id,
            "merged_at": r.merged_at,
            "author": r.author,
            "subject": r.subject,
            "images": {name: image.as_dict() for name, image in sorted(r.images.items())},
            "deployed_at": rfc3339(last.time) if last else None,
            "result": last.result if last else None,
            "verified": win.evidence_kinds() if win else [],
            "rolled_back_by": self.rolled_back_by,
            "restores": self.restores,
            "run_url": last.run_url if last else None,
            "records": [rec.as_dict() | {"tag": rec.tag} for rec in self.records],
        }


def releases(repo_root: Path, name: str, head: str = "HEAD") -> list[Release]:
    """Every release of environment ``name`` along the first-parent line of ``head``,
    newest first. Old versions are read leniently (no schema or policy)."""
    path = env_file(name)
    entries = list(reversed(gitrepo.log(repo_root, path, head)))  # oldest first
    found: list[Release] = []
    previous: str | None = None
    blobs = gitrepo.show_many(repo_root, [(e.commit, path) for e in entries])
    for entry, blob in zip(entries, blobs, strict=True):
        try:
            text = decode(blob, f"{entry.commit}:{path}") if blob is not None else None
        except EnvctlError:
            text = None  # too big or not UTF-8 at that commit: it ran nothing we can name
        data = _plain(text, path) if text is not None else None
        if data is None:
            previous = None  # deleted or unreadable: what follows is new again
            continue
        state = state_digest(data)
        if state != previous:
            found.append(
                Release(
                    entry.commit,
                    entry.date,
                    entry.author,
                    entry.subject,
                    text or "",
                    data,
                    state,
                    _images(data),
                )
            )
        previous = state
    return list(reversed(found))


class Ledger:
    """Releases of one environment, newest first, each with its records."""

    def __init__(self, repo_root: Path, name: str, head: str = "HEAD") -> None:
        self.repo_root, self.name, self.file = repo_root, name, env_file(name)
        self.statuses = [ReleaseStatus(r) for r in releases(repo_root, name, head)]
        self.records = read_records(repo_root, name)  # newest first
        self._place_records(head)
        self._mark_rollbacks()

    def _place_records(self, head: str) -> None:
        if not self.records or not self.statuses:
            return
        position = {
            sha: i for i, sha in enumerate(gitrepo.first_parent_chain(self.repo_root, head))
        }
        by_id = {s.id: s for s in self.statuses}
        starts = sorted((position[s.id], s) for s in self.statuses if s.id in position)
        for record in self.records:
            at = position.get(record.commit)
            if at is None:
                continue  # a commit this clone's main does not have (yet): not ours to judge
            owner = next((s for pos, s in starts if pos >= at), None)
            if owner is None or owner.release.state != record.state:
                warn(
                    f"refs/tags/{record.tag}: skipped: its state does not match "
                    f"{self.file} at {short(record.commit)}"
                )
                continue
            by_id[owner.id].records.append(record)

    def _mark_rollbacks(self) -> None:
        ordered = list(reversed(self.statuses))  # oldest first
        for j, later in enumerate(ordered):
            for i in range(j - 1, -1, -1):
                earlier = ordered[i]
                if earlier.release.state == later.release.state and earlier.succeeded:
                    later.restores = earlier.id
                    for undone in ordered[i + 1 : j]:
                        undone.rolled_back_by = undone.rolled_back_by or later.id
                    break

    # --- questions ------------------------------------------------------------------

    @property
    def current(self) -> ReleaseStatus | None:
        return self.statuses[0] if self.statuses else None

    def succeeded_with_state(self, state: str) -> ReleaseStatus | None:
        """The newest release with this state that a record shows succeeded."""
        return next((s for s in self.statuses if s.release.state == state and s.succeeded), None)

    def rolled_back_images(self) -> dict[ImageSet, ReleaseStatus]:
        """Image sets this environment rolled back (not ones it returned to), with the
        rolled-back release that carried them."""
        by_id = {s.id: s for s in self.statuses}
        found: dict[ImageSet, ReleaseStatus] = {}
        for status in self.statuses:
            if status.rolled_back_by is None:
                continue
            restorer = by_id[status.rolled_back_by]
            if status.release.key != restorer.release.key:
                found.setdefault(status.release.key, status)
        return found

    def find(self, text: str) -> ReleaseStatus:
        """The release ``text`` names: a release id (or a prefix naming one), or the full
        SHA of a main commit (the release in effect there)."""
        if not _HEX.match(text):
            raise EnvctlError(
                f"{text!r} is not a release id or commit SHA (7 to 40 lower-case hex digits; "
                f"see: envctl history {self.name})"
            )
        matches = [s for s in self.statuses if s.id.startswith(text)]
        if len(matches) > 1:
            ids = ", ".join(short(s.id) for s in matches[:4])
            raise EnvctlError(
                f"{self.file}: {text!r} names {len(matches)} releases of {self.name} ({ids}); "
                "give more digits or the full SHA"
            )
        if matches:
            return matches[0]
        if len(text) == 40:
            chain = gitrepo.first_parent_chain(self.repo_root)
            if text in chain:
                at = chain.index(text)
                by_id = {s.id: s for s in self.statuses}
                for sha in chain[at:]:
                    if sha in by_id:
                        return by_id[sha]
        raise EnvctlError(
            f"{self.file}: {text!r} is not a release of {self.name}, nor a commit on main's "
            f"first-parent history (see: envctl history {self.name})"
        )


def when(record: Record | None) -> dt.datetime | None:
    return record.time if record else None


@lru_cache(maxsize=1024)
def _plain(text: str, file: str) -> dict[str, Any] | None:
    """The version ``text`` as plain data (None: not an environment). Cached by text:
    most versions of a file recur in every command that reads the history, and the
    result is only ever read."""
    try:
        data = to_plain(parse(text, file), file)
    except Exception:  # an old version that was never valid YAML ran nothing
        return None
    return data if isinstance(data, dict) and isinstance(data.get("services"), dict) else None


def _images(data: dict[str, Any]) -> dict[str, Image]:
    images: dict[str, Image] = {}
    for name, svc in data["services"].items():
        image = svc.get("image") if isinstance(svc, dict) else None
        if isinstance(image, dict) and isinstance(image.get("commit"), str):
            digest = image.get("digest")
            images[name] = Image(image["commit"], digest if isinstance(digest, str) else None)
    return images
