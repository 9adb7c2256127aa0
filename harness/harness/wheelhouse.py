"""Build the wheelhouse each image installs from, on the host, from uv.lock.

Two parts per service, cached separately under `.cache/wheelhouse/`:

- `deps-<service>-<key>/`: the service's third-party requirements exported from the
  lock (`uv export --frozen --package <component> --no-dev --no-emit-workspace`),
  every pin with its hashes, and those wheels downloaded by pip in hash-checking
  mode for the image's Python (CPython 3.13, manylinux x86_64, glibc <= the
  base's), plus pip itself (pinned) to install them with. The image installs with
  `--require-hashes` from this folder only, so the bytes the lock names are the
  bytes shipped. The key hashes the exported requirements and the target, so an
  unchanged lock is reused without touching the network.
- `members-<service>-<key>/`: the workspace members the service needs (its own
  component, pipeline-proto, service-telemetry), built as wheels with `uv build`.
  The key hashes those members' files; SOURCE_DATE_EPOCH makes the wheels
  byte-identical for identical sources, so Docker's layer cache holds across
  commits that do not touch them.

Which members and which third-party packages a service gets follows from its
component's pyproject.toml through the lock; nothing is listed here by hand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name

from harness.locks import file_lock
from harness.tree import REPO_ROOT, content_hash, tree_files

CACHE = REPO_ROOT / ".cache" / "wheelhouse"
# The workspace component (uv package name) each image is built from.
COMPONENTS = {"pipeline": "pipeline-server", "console": "console-server"}
PYTHON_VERSION = "3.13"
ABI = "cp313"
# python:3.13-slim is Debian bookworm (glibc 2.36); the local base is trixie (2.41).
# Wheels for any manylinux up to the older of the two run on both.
MAX_GLIBC_MINOR = 36
# The installer used inside the build stage only (never in the final image).
PIP = "pip==26.3"
# Bump when the way the wheelhouse is made changes, to invalidate old caches.
RECIPE = "2"
# 1980-01-01: the earliest time a zip (wheel) entry can carry.
SOURCE_DATE_EPOCH = "315532800"


@dataclasses.dataclass(frozen=True)
class Wheelhouse:
    deps_dir: Path
    members_dir: Path
    # The exported `name==version` pins (markers kept), as the image installs them.
    requirements: tuple[str, ...]


def _uv() -> str:
    # The uv installed into the project's venv (harness depends on it, pinned), so
    # the export is made by the same uv version that wrote the lock.
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        raise RuntimeError("wheelhouse: uv not found (make install puts it in .venv/bin)")
    return found


def _export(component: str, *flags: str) -> str:
    args = [_uv(), "export", "--frozen", "--package", component, "--no-dev", "--no-header"]
    return _run([*args, "--format", "requirements-txt", *flags], cwd=REPO_ROOT)


def export(service: str) -> str:
    """The service's third-party requirements, pinned by uv.lock, each with its hashes."""
    return _export(COMPONENTS[service], "--no-emit-workspace")


def _pins_of(exported: str) -> dict[str, str]:
    """Name → version of the ``name==version`` lines of an export (hashes and markers
    are on the same or continuation lines and are skipped)."""
    found: dict[str, str] = {}
    for line in exported.splitlines():
        spec = line.split(";", 1)[0].removesuffix("\\").strip()
        if "==" in spec and not spec.startswith(("#", "--")):
            name, version = spec.split("==", 1)
            found[canonicalize_name(name)] = version
    return found


def locked(component: str) -> tuple[dict[str, str], list[Path]]:
    """What the lock installs with ``component``: third-party name → version, and the
    workspace member folders (the component's own among them)."""
    exported = _export(component, "--no-editable", "--no-hashes", "--no-annotate")
    local = [line.strip() for line in exported.splitlines() if line.startswith("./")]
    return _pins_of(exported), sorted(REPO_ROOT / line for line in local)


def pins(service: str) -> dict[str, str]:
    """Name → version of every third-party package the lock gives the service."""
    return locked(COMPONENTS[service])[0]


def members(service: str) -> list[Path]:
    """The workspace member folders the service installs, its own first."""
    own = REPO_ROOT / "services" / service
    return [own, *(p for p in locked(COMPONENTS[service])[1] if p != own)]


def _platforms() -> list[str]:
    # pip only expands the legacy manylinux aliases itself; list the PEP 600 ones.
    tags = [f"manylinux_2_{minor}_x86_64" for minor in range(MAX_GLIBC_MINOR, 4, -1)]
    return [*tags, "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    # pip and uv are chatty about this machine's unused extra indexes; show them only
    # on failure.
    done = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"wheelhouse: {' '.join(args[:5])} … failed ({done.returncode})")
    return done.stdout


def _download(requirements: Path, dest: Path) -> None:
    target = ["--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", ABI]
    for platform in _platforms():
        target += ["--platform", platform]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "--quiet"]
    pip += ["--only-binary=:all:", "--no-deps", "--dest", str(dest), *target]
    # Hashes in the file switch pip to hash-checking mode: a wheel whose bytes are
    # not the lock's is an error, not a silent substitute.
    _run([*pip, "--require-hashes", "-r", str(requirements)])
    _run([*pip, PIP])


def deps_wheelhouse(service: str) -> tuple[Path, tuple[str, ...]]:
    exported = export(service)
    key = _digest(RECIPE, PYTHON_VERSION, ABI, str(MAX_GLIBC_MINOR), PIP, exported)
    target = CACHE / f"deps-{service}-{key}"
    pinned = _pins_of(exported)
    requirements = tuple(sorted(f"{name}=={version}" for name, version in pinned.items()))
    if (target / "requirements.txt").exists():
        return target, requirements
    CACHE.mkdir(parents=True, exist_ok=True)
    with file_lock(CACHE / f"deps-{service}.lock"):
        if (target / "requirements.txt").exists():
            return target, requirements
        tmp = Path(tempfile.mkdtemp(prefix=f"deps-{service}-", dir=CACHE))
        try:
            reqs = tmp / "requirements.in"
            reqs.write_text(exported)
            _download(reqs, tmp)
            # Written last: its presence marks a complete folder.
            reqs.rename(tmp / "requirements.txt")
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target, requirements


def _member_files(folders: list[Path], files: list[str]) -> list[str]:
    prefixes = tuple(f"{p.relative_to(REPO_ROOT)}/" for p in folders)
    return [f for f in files if f.startswith(prefixes) and "tests" not in Path(f).parts]


def members_wheelhouse(service: str, files: list[str] | None = None) -> Path:
    """``files``: the tree's files (:func:`harness.tree.tree_files`) when the caller has them."""
    folders = members(service)
    sources = _member_files(folders, tree_files() if files is None else files)
    target = CACHE / f"members-{service}-{_digest(RECIPE, content_hash(sources))}"
    if any(target.glob("*.whl")):
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    # One lock for every service: pipeline-proto is built into the same source
    # folder (gen/) by both.
    with file_lock(CACHE / "members.lock"):
        if any(target.glob("*.whl")):
            return target
        out = Path(tempfile.mkdtemp(prefix=f"members-{service}-", dir=CACHE))
        try:
            env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
            for folder in folders:
                args = [_uv(), "build", "--wheel", "--quiet", "--python", sys.executable]
                _run([*args, "--out-dir", str(out), str(folder)], env=env)
            for stray in out.iterdir():
                if stray.suffix != ".whl":
                    stray.unlink()
            shutil.rmtree(target, ignore_errors=True)
            out.rename(target)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return target


def build(service: str, files: list[str] | None = None) -> Wheelhouse:
    deps, requirements = deps_wheelhouse(service)
    return Wheelhouse(deps, members_wheelhouse(service, files), requirements)
