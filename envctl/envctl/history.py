"""Release history of an environment, read from ``git log -- environments/ENV.yaml``.

A release is a version of the file whose images (commit + digest per service) differ
from the version before it; a change that only touched scaling is not a release. Old
versions are read leniently (no schema or policy): only their images matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envctl import gitrepo
from envctl.errors import EnvctlError
from envctl.load import env_file
from envctl.model import Image
from envctl.yamlio import parse, to_plain

# Trailers envctl writes into its commits (git interpret-trailers format).
ACTION = "Envctl-Action"
SOURCE = "Envctl-Source"
ROLLED_BACK = "Envctl-Rolled-Back"  # the change commit of the release a rollback undid

ImageSet = tuple[tuple[str, str, str | None], ...]


@dataclass(frozen=True)
class Release:
    change: str  # the git commit that made this release
    date: str
    author: str
    subject: str
    images: dict[str, Image]
    action: str | None = None  # set-image / promote / rollback, when envctl made it
    rolled_back: bool = field(default=False)

    @property
    def key(self) -> ImageSet:
        return image_set(self.images)

    def has(self, sha: str) -> bool:
        """Whether ``sha`` (a prefix of at least 7) names this release's change commit or
        one of its images' commits."""
        return self.change.startswith(sha) or any(
            i.commit.startswith(sha) for i in self.images.values()
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "date": self.date,
            "author": self.author,
            "subject": self.subject,
            "action": self.action,
            "rolled_back": self.rolled_back,
            "images": {name: image.as_dict() for name, image in sorted(self.images.items())},
        }


def image_set(images: dict[str, Image]) -> ImageSet:
    return tuple(sorted((name, i.commit, i.digest) for name, i in images.items()))


def releases(repo_root: Path, name: str) -> list[Release]:
    """Every release of environment ``name``, newest first."""
    path = env_file(name)
    entries = list(reversed(gitrepo.log(repo_root, path)))  # oldest first
    undone = {sha for e in entries for sha in e.trailers.get(ROLLED_BACK, [])}
    found: list[Release] = []
    previous: ImageSet | None = None
    for entry in entries:
        try:
            text = gitrepo.show(repo_root, entry.commit, path)
        except EnvctlError:
            continue  # too big or not UTF-8 at that commit: it ran nothing we can name
        images = _images(text, path) if text is not None else None
        if images is None:
            continue  # deleted or unreadable at that commit: it ran nothing we can name
        key = image_set(images)
        if key != previous:
            actions = entry.trailers.get(ACTION, [])
            found.append(
                Release(
                    change=entry.commit,
                    date=entry.date,
                    author=entry.author,
                    subject=entry.subject,
                    images=images,
                    action=actions[0] if actions else None,
                    rolled_back=entry.commit in undone,
                )
            )
        previous = key
    return list(reversed(found))


def _images(text: str, file: str) -> dict[str, Image] | None:
    try:
        data = to_plain(parse(text, file), file)
    except Exception:  # an old version that was never valid YAML ran nothing
        return None
    services = data.get("services")
    if not isinstance(services, dict):
        return None
    images: dict[str, Image] = {}
    for name, svc in services.items():
        image = svc.get("image") if isinstance(svc, dict) else None
        if isinstance(image, dict) and isinstance(image.get("commit"), str):
            digest = image.get("digest")
            images[name] = Image(image["commit"], digest if isinstance(digest, str) else None)
    return images or None
