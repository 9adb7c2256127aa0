"""Images in Artifact Registry: push each commit's tag once, copy by digest, read digests back.

- ``publish``: the images ``python -m harness.images build`` made (``.cache/images.json``)
  go to the first cloud environment's registry as ``REGISTRY/SERVICE:COMMIT``. A tag that
  is already there is never pushed again: its digest is read back and used, so a re-run
  of a build cannot swap the bytes behind a commit an environment already pins.
- ``copy``: before an environment is deployed, every image it names must be in its own
  registry (each environment's project has one). Missing ones are copied from the
  promotion source's registry *by digest* with ``crane copy``, which keeps the digest;
  an existing tag that names another digest is an error, never overwritten.

Registry access goes through ``crane`` (go-containerregistry) and ``docker`` as
subprocesses, found on PATH.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.load import load_environment
from envctl.model import Environment

PLATFORM = "linux/amd64"  # Cloud Run runs amd64 only
_NOT_FOUND = ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "NOT_FOUND", "not found", "404")


class ImageError(RuntimeError):
    pass


def _run(args: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(args), input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ImageError(f"{args[0]} is not installed (needed to talk to the registry)") from None


def _checked(args: Sequence[str]) -> str:
    done = _run(args)
    if done.returncode != 0:
        detail = " ".join(done.stderr.split())[-500:] or f"exit status {done.returncode}"
        raise ImageError(f"{' '.join(args[:2])} {args[-1]}: {detail}")
    return done.stdout


def remote_digest(ref: str) -> str | None:
    """The digest ``ref`` (a tag or digest reference) names in its registry, or None."""
    done = _run(["crane", "digest", ref])
    if done.returncode == 0:
        return done.stdout.strip()
    if any(marker in done.stderr for marker in _NOT_FOUND):
        return None
    detail = " ".join(done.stderr.split())[-500:] or f"exit status {done.returncode}"
    raise ImageError(f"crane digest {ref}: {detail}")


@dataclass(frozen=True)
class Published:
    service: str
    ref: str  # REGISTRY/SERVICE:COMMIT
    digest: str
    pushed: bool  # False: the tag was there already and was left alone

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "ref": self.ref,
            "digest": self.digest,
            "pushed": self.pushed,
        }


def load_build(manifest: Path) -> dict[str, Any]:
    try:
        build: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImageError(
            f"{manifest}: no build manifest (run: python -m harness.images build)"
        ) from None
    if build.get("dirty") or build.get("tag") != build.get("commit"):
        raise ImageError(
            f"{manifest}: built from a dirty tree ({build.get('tag')}); only images of a "
            "commit are published"
        )
    return build


def publish(
    registry: str, manifest: Path, services: Sequence[str] | None = None
) -> list[Published]:
    build = load_build(manifest)
    commit = str(build["commit"])
    out = []
    for service, image in sorted(build["images"].items()):
        if services is not None and service not in services:
            continue
        target = f"{registry}/{service}:{commit}"
        existing = remote_digest(target)
        if existing is not None:
            out.append(Published(service, target, existing, pushed=False))
            continue
        platform = _checked(
            ["docker", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image["ref"]]
        ).strip()
        if platform != PLATFORM:
            raise ImageError(f"{image['ref']}: built for {platform}; Cloud Run needs {PLATFORM}")
        _checked(["docker", "tag", image["ref"], target])
        _checked(["docker", "push", "--quiet", target])
        digest = remote_digest(target)
        if digest is None:
            raise ImageError(f"{target}: pushed, but the registry does not know the tag")
        out.append(Published(service, target, digest, pushed=True))
    if services is not None and {p.service for p in out} != set(services):
        missing = sorted(set(services) - {p.service for p in out})
        raise ImageError(f"{manifest}: no image for {', '.join(missing)}")
    return out


@dataclass(frozen=True)
class Copy:
    service: str
    source: str | None  # REGISTRY/SERVICE@DIGEST copied from; None: already there
    target: str  # REGISTRY/SERVICE:COMMIT
    digest: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "source": self.source,
            "target": self.target,
            "digest": self.digest,
        }


def ensure_images(repo_root: Path, name: str) -> list[Copy]:
    """Make every image ``name`` pins present in its registry under its commit tag."""
    env = load_environment(repo_root, name)
    source = _source(repo_root, env)
    done = []
    for service in env.services:
        image = env.image(service)
        digest = image.digest
        if digest is None or env.registry is None:
            raise ImageError(f"{env.file}: services.{service}.image.digest: cloud images pin one")
        target = f"{env.registry}/{service}:{image.commit}"
        existing = remote_digest(target)
        if existing == digest:
            done.append(Copy(service, None, target, digest))
            continue
        if existing is not None:
            raise ImageError(
                f"{target} already names {existing}, not {digest}; a tag is never moved "
                f"(check services.{service}.image in {env.file})"
            )
        if remote_digest(f"{env.registry}/{service}@{digest}") is not None:
            # The bytes are there under another tag (or none): tag them, copying nothing.
            _checked(["crane", "tag", f"{env.registry}/{service}@{digest}", image.commit])
            done.append(Copy(service, None, target, digest))
            continue
        if source is None or source.registry is None:
            raise ImageError(
                f"{env.file}: services.{service}.image: {digest} is not in {env.registry} and "
                f"{env.name} has no cloud promotion source to copy it from (build.yml pushes "
                "the first cloud environment's images)"
            )
        origin = f"{source.registry}/{service}@{digest}"
        _checked(["crane", "copy", origin, target])
        if remote_digest(target) != digest:
            raise ImageError(f"{target}: copied from {origin}, but the digest differs")
        done.append(Copy(service, origin, target, digest))
    return done


def _source(repo_root: Path, env: Environment) -> Environment | None:
    if env.promotion_source is None:
        return None
    source = load_environment(repo_root, env.promotion_source)
    return source if source.is_cloud else None
