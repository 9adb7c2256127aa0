"""Writing commands: set-image, promote, rollback.

Each one edits an environment file as round-trip YAML (comments and key order kept),
checks the result with the same schema and policy as ``envctl validate``, replaces the
file in one step (temp file + rename) and makes one commit naming the environment, the
services and their SHAs. They refuse to run on a dirty tree, and on any failure after
the write they put the old file back, so nothing is ever left half done.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from envctl import gitrepo
from envctl.errors import EnvctlError
from envctl.freeze import refuse_if_frozen
from envctl.history import ACTION, ROLLED_BACK, SOURCE, Release, image_set, releases
from envctl.load import load_environment, parse_environment
from envctl.model import CHECKOUT, Environment, Image
from envctl.yamlio import Replacement, dump, parse

_SHA_PREFIX = re.compile(r"^[0-9a-f]{7,40}$")


@dataclass(frozen=True)
class Outcome:
    """What a writing command did (``changed`` is False when the file already said so)."""

    action: str
    environment: str
    changed: bool
    images: dict[str, Image]
    commit: str | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "environment": self.environment,
            "changed": self.changed,
            "commit": self.commit,
            "images": {name: i.as_dict() for name, i in sorted(self.images.items())},
            "message": self.message,
            **self.extra,
        }


def set_image(
    repo_root: Path,
    name: str,
    service: str,
    commit: str,
    digest: str | None,
    now: dt.datetime,
) -> Outcome:
    gitrepo.require_clean(repo_root)
    env = load_environment(repo_root, name)
    env.service(service)  # a clear error for an unknown service
    refuse_if_frozen(env, now, "set-image")
    images = {service: Image(commit, digest)}
    subject = f"{name}: set {service} to {_short(commit)}"
    return _write(env, "set-image", images, subject, trailers={})


def promote(
    repo_root: Path, source: str, target: str, now: dt.datetime, commit: str | None = None
) -> Outcome:
    """Copy the exact images ``source`` runs (or ran, with ``commit``) into ``target``."""
    gitrepo.require_clean(repo_root)
    src = load_environment(repo_root, source)
    dst = load_environment(repo_root, target)
    if dst.promotion_source != source:
        allowed = repr(dst.promotion_source) if dst.promotion_source else "no environment"
        raise EnvctlError(
            f"{dst.file}: promotion.from: {target} receives promotions from {allowed}, "
            f"not {source!r}"
        )
    refuse_if_frozen(dst, now, "promote")
    images = src.images() if commit is None else _release_of(src, commit).images
    for svc, image in images.items():
        if svc in dst.services and dst.is_cloud and (image.commit == CHECKOUT or not image.digest):
            raise EnvctlError(
                f"{src.file}: services.{svc}.image: {source} runs an image built from the "
                f"working tree, which cannot be promoted; give {target} a CI-built image "
                f"with envctl set-image {target} {svc} --commit SHA --digest sha256:..."
            )
    missing = [svc for svc in dst.services if svc not in images]
    if missing:
        raise EnvctlError(
            f"{src.file}: services: {source} has no {missing[0]!r}, which {target} runs; "
            "promote needs every service"
        )
    chosen = {svc: images[svc] for svc in dst.services}
    subject = f"{target}: promote {_names(chosen)} from {source}"
    outcome = _write(dst, "promote", chosen, subject, trailers={SOURCE: source})
    return replace(outcome, extra={"source": source, "approval_required": dst.approval_required})


def rollback(repo_root: Path, name: str, to: str | None = None) -> Outcome:
    """Restore the previous distinct release (or release ``to``) as a new forward commit.

    Without ``to``: the newest release whose images differ from today's and which no
    rollback has already undone (so a second rollback goes further back instead of
    bouncing between two releases). With ``to``: the newest release whose change commit
    or image commit starts with ``to``; it must be one this environment ran.
    """
    gitrepo.require_clean(repo_root)
    env = load_environment(repo_root, name)
    history = releases(repo_root, name)
    current = image_set(env.images())
    if to is None:
        candidates = [r for r in history if r.key != current and not r.rolled_back]
        if not candidates:
            raise EnvctlError(f"{env.file}: {name} has no earlier release to roll back to")
        target = candidates[0]
    else:
        target = _release_of(env, to, history)
    undone = history[0].change if history and history[0].key == current else None
    # A service added since that release keeps its image; one removed since is ignored.
    images = {svc: target.images[svc] for svc in env.services if svc in target.images}
    subject = f"{name}: roll back to {_names(images)}"
    trailers = {ROLLED_BACK: undone} if undone else {}
    outcome = _write(env, "rollback", images, subject, trailers=trailers, release=target)
    return replace(outcome, extra={"release": target.change, "rolled_back": undone})


def _release_of(env: Environment, sha: str, history: list[Release] | None = None) -> Release:
    if not _SHA_PREFIX.match(sha):
        raise EnvctlError(f"{sha!r} is not a commit SHA (7 to 40 lower-case hex digits)")
    history = releases(env.repo_root, env.name) if history is None else history
    for release in history:
        if release.has(sha):
            return release
    raise EnvctlError(
        f"{env.file}: services: {env.name} never ran {sha}: no release in "
        f"git log -- {env.file} has it (see: envctl history {env.name})"
    )


def _write(
    env: Environment,
    action: str,
    images: dict[str, Image],
    subject: str,
    trailers: dict[str, str],
    release: Release | None = None,
) -> Outcome:
    doc = parse(env.text, env.file)
    for svc, image in images.items():
        node = doc["services"][svc]["image"]
        node["commit"] = image.commit
        if image.digest:
            node["digest"] = image.digest
        elif "digest" in node:
            del node["digest"]
    text = dump(doc)
    # The same checks as `envctl validate`: an edit that breaks a rule is never written.
    parse_environment(env.repo_root, env.name, text)
    if text == env.text:
        return Outcome(action, env.name, False, images, message=f"{env.name} already runs that")
    body = [f"{svc}: {i.commit} {i.digest or '(no digest)'}" for svc, i in images.items()]
    if release is not None:
        body.append(f"release: {release.change} ({release.date})")
    footer = [f"{ACTION}: {action}", *(f"{k}: {v}" for k, v in trailers.items())]
    message = "\n\n".join([subject, "\n".join(body), "\n".join(footer)]) + "\n"
    root = env.repo_root
    gitrepo.require_unlocked(root)  # a locked index would fail the commit after the write
    before = gitrepo.head(root)
    written = Replacement(root / env.file, text, env.text, env.file)
    try:
        sha = gitrepo.commit_file(root, env.file, message)
    except BaseException as exc:
        if _head_or_none(root) != before:  # the commit exists; only git's last step failed
            written.keep()
            raise EnvctlError(
                f"{env.file}: committed, but git then failed ({exc}); check git status"
            ) from None
        written.undo()  # leave the tree as we found it
        if gitrepo.staged(root, env.file):  # git commit -- PATH stages nothing; be sure
            gitrepo.git(root, "reset", "--quiet", "--", env.file)
        if isinstance(exc, EnvctlError):
            raise EnvctlError(f"{exc.lines()[0]} ({env.file} left as it was)") from None
        raise
    written.keep()
    return Outcome(action, env.name, True, images, sha, subject)


def _head_or_none(root: Path) -> str | None:
    try:
        return gitrepo.head(root)
    except EnvctlError:
        return None


def _short(commit: str) -> str:
    return commit[:12] if commit != CHECKOUT else commit


def _names(images: dict[str, Image]) -> str:
    return ", ".join(f"{svc}@{_short(i.commit)}" for svc, i in images.items())
