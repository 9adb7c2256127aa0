"""Build (or reuse) the two service images at the working tree's git commit.

Tag = the full commit SHA (`git rev-parse HEAD`); a dirty tree gets `<sha>-dirty`,
which only the local environment may ask for (`allow_dirty`). Every image carries
the label `org.cloudrun-gtfs.content`, a hash of the files it was built from, so a
rebuild of an unchanged tree reuses the image while a changed dirty tree (same
tag) rebuilds. The result is written to `.cache/images.json` for the test
harness, `make up` and the bench:

    {"commit": "...", "tag": "...", "dirty": false, "base": "...",
     "images": {"pipeline": {"ref": "gtfs-pipeline:<tag>", "id": "sha256:...",
                              "size": 123, "reused": true, ...}, "console": {...}}}

CLI: `python -m harness.images build [--allow-dirty] [--base IMAGE] [--service S]`,
`python -m harness.images show`, `python -m harness.images prune` (drop other commits' images).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import base_image, wheelhouse
from harness.engine import ensure_engine
from harness.locks import file_lock
from harness.tree import (
    REPO_ROOT,
    content_hash,
    head_commit,
    image_inputs,
    is_dirty,
    tree_files,
)


@dataclasses.dataclass(frozen=True)
class Spec:
    """What differs between the two images built from services/Dockerfile."""

    # The image's repository name, also its OCI title.
    name: str
    description: str
    # Top-level folders of the checkout copied under /app (besides the wheels).
    data: tuple[str, ...] = ()


SPECS = {
    "pipeline": Spec("gtfs-pipeline", "GTFS pipeline service (pipeline.v1 gRPC)", ("pipelines",)),
    "console": Spec("gtfs-console", "Console (FastAPI) for the GTFS pipeline service"),
}
NAMES = {service: spec.name for service, spec in SPECS.items()}
CONTENT_LABEL = "org.cloudrun-gtfs.content"
BASE_LABEL = "org.cloudrun-gtfs.base"
MANIFEST = REPO_ROOT / ".cache" / "images.json"
LOCK = REPO_ROOT / ".cache" / "locks" / "images.lock"


class DirtyTreeError(RuntimeError):
    """The tree has uncommitted changes and the caller did not accept that."""


@dataclasses.dataclass(frozen=True)
class Image:
    service: str
    ref: str
    id: str
    size: int
    reused: bool
    seconds: float


@dataclasses.dataclass(frozen=True)
class Build:
    commit: str
    tag: str
    dirty: bool
    base: str
    images: dict[str, Image]

    def ref(self, service: str) -> str:
        return self.images[service].ref

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["images"] = {k: dataclasses.asdict(v) for k, v in self.images.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Build:
        images = {k: Image(**v) for k, v in data["images"].items()}
        return cls(data["commit"], data["tag"], data["dirty"], data["base"], images)


def _inspect(ref: str) -> dict[str, Any] | None:
    done = subprocess.run(
        ["docker", "image", "inspect", ref], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return None
    result: dict[str, Any] = json.loads(done.stdout)[0]
    return result


def _source_url() -> str:
    if url := os.environ.get("IMAGE_SOURCE"):
        return url
    done = subprocess.run(
        ["git", "remote", "get-url", "origin"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _context(service: str, files: list[str], houses: wheelhouse.Wheelhouse, into: Path) -> None:
    """Lay out exactly what the Dockerfile may COPY: nothing else reaches the daemon."""
    _link_or_copy(REPO_ROOT / "services" / "Dockerfile", into / "Dockerfile")
    for whl in houses.deps_dir.iterdir():
        if whl.is_file() and not whl.name.endswith(".lock"):
            _link_or_copy(whl, into / "wheels" / "deps" / whl.name)
    for whl in houses.members_dir.glob("*.whl"):
        _link_or_copy(whl, into / "wheels" / "members" / whl.name)
    (into / "app").mkdir()
    for rel in files:
        parts = Path(rel).parts
        # Tests of the data folders are not part of what the service serves.
        if parts[0] in SPECS[service].data and "tests" not in parts:
            _link_or_copy(REPO_ROOT / rel, into / "app" / rel)


def _build_one(
    service: str, tag: str, digest: str, base: str, commit: str, files: list[str]
) -> Image:
    ref = f"{NAMES[service]}:{tag}"
    existing = _inspect(ref)
    labels = (existing or {}).get("Config", {}).get("Labels") or {}
    if existing and labels.get(CONTENT_LABEL) == digest and labels.get(BASE_LABEL) == base:
        return Image(service, ref, existing["Id"], int(existing["Size"]), True, 0.0)
    started = time.monotonic()
    houses = wheelhouse.build(service, files)
    ctx_root = REPO_ROOT / ".cache" / "build"
    ctx_root.mkdir(parents=True, exist_ok=True)
    ctx = Path(tempfile.mkdtemp(prefix=f"{service}-", dir=ctx_root))
    try:
        _context(service, files, houses, ctx)
        created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        args = ["docker", "build", "--quiet", "--target", service, "--tag", ref]
        args += [
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--build-arg",
            f"TITLE={SPECS[service].name}",
        ]
        args += ["--build-arg", f"DESCRIPTION={SPECS[service].description}"]
        args += ["--build-arg", f"REVISION={commit}", "--build-arg", f"CREATED={created}"]
        args += ["--build-arg", f"SOURCE={_source_url()}"]
        args += ["--label", f"{CONTENT_LABEL}={digest}", "--label", f"{BASE_LABEL}={base}"]
        # The classic builder needs nothing from a registry; BuildKit would try to
        # fetch its frontend. Callers that have BuildKit and a registry may override.
        env = {**os.environ, "DOCKER_BUILDKIT": os.environ.get("DOCKER_BUILDKIT", "0")}
        done = subprocess.run(
            [*args, str(ctx)], capture_output=True, text=True, env=env, check=False
        )
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            raise RuntimeError(f"docker build of {ref} failed ({done.returncode})")
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    info = _inspect(ref)
    assert info is not None, f"{ref} missing right after its build"
    return Image(service, ref, info["Id"], int(info["Size"]), False, time.monotonic() - started)


def current_digest() -> str:
    """The content label an image built from the tree as it is now would carry."""
    return content_hash(image_inputs(tree_files()))


def build(
    allow_dirty: bool = False,
    base: str | None = None,
    services: tuple[str, ...] = ("pipeline", "console"),
) -> Build:
    """Build or reuse the images of `services` at the current tree; write the manifest."""
    ensure_engine()
    commit = head_commit()
    dirty = is_dirty()
    if dirty and not allow_dirty:
        raise DirtyTreeError(
            "the working tree has uncommitted changes; commit them, or build with "
            "--allow-dirty (accepted by the local environment only)"
        )
    tag = f"{commit}-dirty" if dirty else commit
    requested = base or os.environ.get("BASE_IMAGE") or base_image.DEFAULT_BASE
    with file_lock(LOCK):
        chosen = base_image.resolve(requested).ref
        files = tree_files()
        digest = content_hash(image_inputs(files))
        images = {s: _build_one(s, tag, digest, chosen, commit, files) for s in services}
        result = Build(commit, tag, dirty, chosen, images)
        _write_manifest(result)
    return result


def _write_manifest(result: Build) -> None:
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    tmp = MANIFEST.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    tmp.replace(MANIFEST)


def load_manifest(path: Path = MANIFEST) -> Build:
    """The last build's result, as written by `build` (the bench reads this)."""
    return Build.from_json(json.loads(path.read_text()))


def prune(keep: Build) -> list[str]:
    """Remove this project's images other than `keep`'s (old commits, old dirty builds)."""
    removed = []
    for name in NAMES.values():
        listed = subprocess.run(
            ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for ref in listed:
            if ref.endswith(":<none>") or ref in {i.ref for i in keep.images.values()}:
                continue
            if (
                subprocess.run(["docker", "rmi", ref], capture_output=True, check=False).returncode
                == 0
            ):
                removed.append(ref)
    return removed


def _human(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _report(result: Build) -> None:
    print(f"commit {result.commit}{' (dirty)' if result.dirty else ''}  base {result.base}")  # noqa: T201
    for image in result.images.values():
        how = "reused" if image.reused else f"built in {image.seconds:.1f}s"
        print(f"{image.ref}  {image.id}  {_human(image.size)}  ({how})")  # noqa: T201
    print(f"manifest: {MANIFEST.relative_to(REPO_ROOT)}")  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build or reuse both images at the current commit")
    b.add_argument("--allow-dirty", action="store_true", help="tag a dirty tree <sha>-dirty")
    b.add_argument("--base", help="base image (default: $BASE_IMAGE or python:3.13-slim)")
    b.add_argument("--service", action="append", choices=sorted(NAMES), help="only this one")
    sub.add_parser("show", help="print the last build's manifest")
    sub.add_parser("prune", help="remove images of other commits than the manifest's")
    args = parser.parse_args(argv)
    if args.command == "show":
        print(MANIFEST.read_text(), end="")  # noqa: T201
        return 0
    if args.command == "prune":
        for ref in prune(load_manifest()):
            print(f"removed {ref}")  # noqa: T201
        return 0
    try:
        services = tuple(args.service) if args.service else ("pipeline", "console")
        _report(build(allow_dirty=args.allow_dirty, base=args.base, services=services))
    except DirtyTreeError as err:
        print(f"images: {err}", file=sys.stderr)  # noqa: T201
        return 2
    except (RuntimeError, subprocess.CalledProcessError) as err:
        print(f"images: {err}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
