"""What the working tree is: its commit, whether it is dirty, which files it holds."""

from __future__ import annotations

import hashlib
from pathlib import Path

from envctl import gitrepo

REPO_ROOT = Path(__file__).resolve().parents[2]


def head_commit() -> str:
    return gitrepo.head(REPO_ROOT)


def is_dirty() -> bool:
    # Untracked files count: they end up in the image as much as tracked ones.
    return bool(gitrepo.changed(REPO_ROOT, untracked=True))


def tree_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files, as the image would see them.

    Generated code (services/proto/gen) is left out: it follows from the .proto
    files and the pinned generator, both of which are inputs."""
    names = gitrepo.git(
        REPO_ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z"
    ).split("\0")
    return sorted({n for n in names if n and (REPO_ROOT / n).is_file()})


# What shapes the services' behaviour inside the images. Docs, tests, the bench
# and the harness itself do not, so editing them does not rebuild the images.
IMAGE_INPUTS = (
    "uv.lock",  # every third-party version in the images
    "services/Dockerfile",
    "services/pipeline/",
    "services/console/",
    "services/telemetry/",  # shipped in both images (issue 9)
    "services/proto/",
    "pipelines/",
)


def image_inputs(files: list[str]) -> list[str]:
    return [f for f in files if f.startswith(IMAGE_INPUTS) and "tests" not in Path(f).parts[:-1]]


def content_hash(files: list[str]) -> str:
    hasher = hashlib.sha256()
    for rel in files:
        hasher.update(rel.encode() + b"\0" + (REPO_ROOT / rel).read_bytes() + b"\0")
    return hasher.hexdigest()
