"""Writing commands: set-image, promote, rollback.

Each one edits an environment file as round-trip YAML (comments and key order kept),
checks the result with the same schema and policy as ``envctl validate``, replaces the
file in one step (temp file + rename) and makes one commit naming the environment, the
services, their SHAs and the releases involved. They refuse to run on a dirty tree, and
on any failure after the write they put the old file back, so nothing is ever left half
done.

Promotion and rollback decide from the deploy record (``envctl.history.Ledger``), never
from the file's history alone: only a release recorded ``succeeded`` is promoted or
rolled back to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from envctl import gitrepo
from envctl.clock import parse_duration, rfc3339
from envctl.errors import EnvctlError
from envctl.freeze import refuse_if_frozen
from envctl.history import (
    ACTION,
    RELEASE,
    ROLLED_BACK,
    SOURCE,
    Ledger,
    ReleaseStatus,
    image_set,
    short,
)
from envctl.load import load_environment, parse_environment
from envctl.model import CHECKOUT, Environment, Image
from envctl.records import state_digest
from envctl.yamlio import Replacement, dump, parse


class NothingToRollBackTo(EnvctlError):
    """No release of the environment was ever recorded succeeded (or every one is the
    current state): the CLI exits 3 so a workflow can say "nothing to roll back to"."""


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


def set_images(repo_root: Path, name: str, images: dict[str, Image], now: dt.datetime) -> Outcome:
    """Point each named service at its image, all in one commit (one release)."""
    gitrepo.require_clean(repo_root)
    env = load_environment(repo_root, name)
    for service in images:
        env.service(service)  # a clear error for an unknown service
    refuse_if_frozen(env, now, "set-image")
    subject = f"{name}: set {_names(images)}"
    return _write(env, "set-image", _with_images(env, images), subject, body=[], trailers={})


def promote(
    repo_root: Path,
    source: str,
    target: str,
    now: dt.datetime,
    release: str | None = None,
    allow_rolled_back: bool = False,
    reason: str | None = None,
) -> Outcome:
    """Copy the images of ``source``'s newest verified release (or ``release``) into
    ``target``: recorded succeeded in ``source``, soaked for ``target``'s
    ``promotion.soak``, and not a set of images ``target`` rolled back (unless
    ``allow_rolled_back`` with a ``reason``)."""
    gitrepo.require_clean(repo_root)
    src = load_environment(repo_root, source)
    dst = load_environment(repo_root, target)
    if dst.promotion_source != source:
        allowed = repr(dst.promotion_source) if dst.promotion_source else "no environment"
        raise EnvctlError(
            f"{dst.file}: promotion.from: {target} receives promotions from {allowed}, "
            f"not {source!r}"
        )
    if allow_rolled_back and not (reason or "").strip():
        raise EnvctlError("--allow-rolled-back needs --reason TEXT (it goes into the commit)")
    refuse_if_frozen(dst, now, "promote")
    _refuse_working_tree_images(src, dst)
    ledger = Ledger(repo_root, source)
    soak = parse_duration(dst.soak) if dst.soak else None
    if release is not None:
        chosen = ledger.find(release)
        why = _not_promotable(chosen, source, target, soak, now)
        if why:
            raise EnvctlError(f"{src.file}: release {short(chosen.id)}: {why}")
        skipped: list[str] = []
    else:
        chosen, skipped = _newest_promotable(ledger, src, target, soak, now)
    images = chosen.release.images
    missing = [svc for svc in dst.services if svc not in images]
    if missing:
        raise EnvctlError(
            f"{src.file}: services: {source}'s release {short(chosen.id)} has no "
            f"{missing[0]!r}, which {target} runs; promote needs every service"
        )
    picked = {svc: images[svc] for svc in dst.services}
    body = [f"release: {source}@{short(chosen.id)} ({chosen.observed()})", *skipped]
    rolled = Ledger(repo_root, target).rolled_back_images().get(image_set(picked))
    if rolled is not None:
        undone = (
            f"{target} rolled back release {short(rolled.id)} (merged {rolled.release.merged_at}) "
            f"with these images in release {short(rolled.rolled_back_by or '')}"
        )
        if not allow_rolled_back:
            raise EnvctlError(
                f"{dst.file}: services: {source}'s release {short(chosen.id)} carries the "
                f"images {undone}; promote refuses to ship them again unless told to: "
                "--allow-rolled-back --reason TEXT"
            )
        body += [f"ships again the images {undone}", f"reason: {reason}"]
    subject = f"{target}: promote {_names(picked)} from {source}"
    trailers = {SOURCE: source, RELEASE: chosen.id}
    outcome = _write(dst, "promote", _with_images(dst, picked), subject, body, trailers)
    extra = {
        "source": source,
        "release": chosen.id,
        "approval_required": dst.approval_required,
        "skipped": skipped,
    }
    return replace(outcome, extra=extra)


def _refuse_working_tree_images(src: Environment, dst: Environment) -> None:
    for svc, image in src.images().items():
        if svc in dst.services and dst.is_cloud and (image.commit == CHECKOUT or not image.digest):
            raise EnvctlError(
                f"{src.file}: services.{svc}.image: {src.name} runs an image built from the "
                f"working tree, which cannot be promoted; give {dst.name} a CI-built image "
                f"with envctl set-image {dst.name} {svc}=SHA@sha256:DIGEST"
            )


def _not_promotable(
    status: ReleaseStatus, source: str, target: str, soak: dt.timedelta | None, now: dt.datetime
) -> str | None:
    """Why ``status`` may not be promoted now, in words (None: it may)."""
    if not status.records:
        return f"not deployed to {source} yet"
    first = status.first_success()
    if first is None:
        last = status.records[0]
        run = f" ({last.run_url})" if last.run_url else ""
        return f"failed in {source} at {rfc3339(last.time)}{run}"
    if status.rolled_back_by:
        return f"rolled back in {source} by release {short(status.rolled_back_by)}"
    if soak is not None and first.time + soak > now:
        return f"soaking in {source} until {rfc3339(first.time + soak)} ({target}'s promotion.soak)"
    return None


def _newest_promotable(
    ledger: Ledger, src: Environment, target: str, soak: dt.timedelta | None, now: dt.datetime
) -> tuple[ReleaseStatus, list[str]]:
    skipped: list[str] = []
    for status in ledger.statuses:
        why = _not_promotable(status, src.name, target, soak, now)
        if why is None:
            return status, skipped
        skipped.append(f"skipped {src.name}@{short(status.id)}: {why}")
    reasons = "; ".join(s.removeprefix("skipped ") for s in skipped[:4]) or "it has no releases"
    raise EnvctlError(
        f"{src.file}: no release of {src.name} can be promoted to {target}: {reasons} "
        f"(see: envctl history {src.name})"
    )


def rollback(repo_root: Path, name: str, to: str | None = None) -> Outcome:
    """Restore the whole file of the newest release recorded succeeded in ``name`` that
    differs from today's and was not itself rolled back (or of release ``to``), as one
    new forward commit naming both releases."""
    gitrepo.require_clean(repo_root)
    env = load_environment(repo_root, name)
    ledger = Ledger(repo_root, name)
    state = state_digest(env.data)
    if to is not None:
        target = ledger.find(to)
        why = _not_a_rollback_target(target, state, name)
        if why:
            raise EnvctlError(f"{env.file}: release {short(target.id)}: {why}")
    else:
        target = _last_known_good(ledger, env, state)
    current = ledger.current
    undone = current.id if current is not None and current.release.state == state else None
    subject = f"{name}: roll back to {short(target.id)}" + (
        f" (undoes {short(undone)})" if undone else ""
    )
    body = [
        f"restores release {short(target.id)} ({target.observed()}): images and config",
        *(
            f"{svc}: {i.commit} {i.digest or '(no digest)'}"
            for svc, i in target.release.images.items()
        ),
    ]
    trailers = {RELEASE: target.id, **({ROLLED_BACK: undone} if undone else {})}
    outcome = _write(env, "rollback", target.release.text, subject, body, trailers)
    return replace(
        outcome, images=target.release.images, extra={"release": target.id, "rolled_back": undone}
    )


def _last_known_good(ledger: Ledger, env: Environment, state: str) -> ReleaseStatus:
    for status in ledger.statuses:
        if status.succeeded and status.release.state != state and status.rolled_back_by is None:
            return status
    if not any(s.succeeded for s in ledger.statuses):
        raise NothingToRollBackTo(
            f"{env.file}: nothing to roll back to: no release of {env.name} is recorded as "
            "succeeded yet (a first deploy has no earlier good release; fix forward)"
        )
    raise NothingToRollBackTo(
        f"{env.file}: nothing to roll back to: every release recorded succeeded in "
        f"{env.name} is today's file or was rolled back (see: envctl history {env.name})"
    )


def _not_a_rollback_target(status: ReleaseStatus, state: str, name: str) -> str | None:
    if status.release.state == state:
        return None  # today's file already: the write finds nothing to commit
    if not status.succeeded:
        return f"not recorded as succeeded in {name} ({status.observed()})"
    if status.rolled_back_by:
        return f"it was rolled back by release {short(status.rolled_back_by)}"
    return None


def _with_images(env: Environment, images: dict[str, Image]) -> str:
    doc = parse(env.text, env.file)
    for svc, image in images.items():
        node = doc["services"][svc]["image"]
        node["commit"] = image.commit
        if image.digest:
            node["digest"] = image.digest
        elif "digest" in node:
            del node["digest"]
    return dump(doc)


def _write(
    env: Environment,
    action: str,
    text: str,
    subject: str,
    body: list[str],
    trailers: dict[str, str],
) -> Outcome:
    # The same checks as `envctl validate`: an edit that breaks a rule is never written.
    written_env = parse_environment(env.repo_root, env.name, text)
    images = written_env.images()
    if text == env.text:
        return Outcome(action, env.name, False, images, message=f"{env.name} already runs that")
    if action != "rollback":
        body = [
            *(f"{svc}: {i.commit} {i.digest or '(no digest)'}" for svc, i in images.items()),
            *body,
        ]
    footer = [f"{ACTION}: {action}", *(f"{k}: {v}" for k, v in trailers.items())]
    message = "\n\n".join(filter(None, [subject, "\n".join(body), "\n".join(footer)])) + "\n"
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


def _names(images: dict[str, Image]) -> str:
    return ", ".join(f"{svc}@{i.short()}" for svc, i in images.items())
