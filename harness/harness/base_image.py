"""Pick the base image for the service images, building a local one when needed.

The Dockerfiles take `BASE_IMAGE` (default: the public `python:3.13-slim`). These
machines reach no image registry, so when that image is neither present nor
pullable we make an equivalent base once: a minimal Debian trixie (whose python3
is 3.13) made with debootstrap and loaded with `docker import`. It is cached
under a fixed tag and reused by every later build.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.locks import file_lock

DEFAULT_BASE = "python:3.13-slim"
LOCAL_BASE = "local/python:3.13-trixie"
SUITE = "trixie"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
# python3: the interpreter; ca-certificates: TLS from inside the image (google-auth).
PACKAGES = ("python3", "ca-certificates")
PULL_TIMEOUT_S = 20
REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_PATH = REPO_ROOT / ".cache" / "locks" / "base-image.lock"


@dataclasses.dataclass(frozen=True)
class BaseImage:
    ref: str
    # "present", "pulled" or "built": how the reference became usable here.
    origin: str


def _docker(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def image_exists(ref: str) -> bool:
    return _docker("image", "inspect", "--format", "{{.Id}}", ref).returncode == 0


def _try_pull(ref: str) -> bool:
    # A registry that cannot be reached fails fast or hangs on DNS/TCP; bound both.
    try:
        return _docker("pull", "--quiet", ref, timeout=PULL_TIMEOUT_S).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def resolve(requested: str = DEFAULT_BASE, log: bool = True) -> BaseImage:
    """Return a base image that exists locally: the requested one, or the local build."""
    if image_exists(requested):
        return _said(BaseImage(requested, "present"), log)
    if requested == LOCAL_BASE or image_exists(LOCAL_BASE):
        if not image_exists(LOCAL_BASE):
            build_local_base()
            return _said(BaseImage(LOCAL_BASE, "built"), log)
        return _said(BaseImage(LOCAL_BASE, "present"), log, fallback_for=requested, cached=True)
    if _try_pull(requested):
        return _said(BaseImage(requested, "pulled"), log)
    with file_lock(LOCK_PATH):
        # Another process may have built it while we waited for the lock.
        if image_exists(LOCAL_BASE):
            return _said(BaseImage(LOCAL_BASE, "present"), log, fallback_for=requested)
        build_local_base()
    return _said(BaseImage(LOCAL_BASE, "built"), log, fallback_for=requested)


def _said(
    base: BaseImage, log: bool, fallback_for: str | None = None, cached: bool = False
) -> BaseImage:
    if log:
        why = ""
        if fallback_for:
            why = f" (stands in for {fallback_for}: " + (
                "not present, local equivalent cached)" if cached else "it cannot be pulled here)"
            )
        print(f"base image: {base.ref} [{base.origin}]{why}", file=sys.stderr)  # noqa: T201
    return base


def _ensure_debootstrap() -> str:
    path = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if path is None:
        if os.geteuid() != 0:
            raise RuntimeError("debootstrap is missing and this is not root to install it")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        path = "/usr/sbin/debootstrap"
    scripts = Path("/usr/share/debootstrap/scripts")
    # Older debootstrap releases do not know newer suites; they all use sid's script.
    if not (scripts / SUITE).exists() and (scripts / "sid").exists():
        (scripts / SUITE).symlink_to("sid")
    return path


def build_local_base(tag: str = LOCAL_BASE) -> None:
    """debootstrap a minimal Debian trixie with python3 and import it as `tag`."""
    if os.geteuid() != 0:
        raise RuntimeError("building the local base image needs root (debootstrap)")
    debootstrap = _ensure_debootstrap()
    print(f"base image: building {tag} with debootstrap ({SUITE}) …", file=sys.stderr)  # noqa: T201
    work = Path(tempfile.mkdtemp(prefix="base-rootfs-", dir=REPO_ROOT / ".cache"))
    rootfs = work / "rootfs"
    try:
        subprocess.run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(rootfs),
                MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        _slim(rootfs)
        version = subprocess.run(
            ["chroot", str(rootfs), "python3", "-c", "import sys; print(sys.version.split()[0])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        changes = [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            'CMD ["python3"]',
            f"LABEL org.cloudrun-gtfs.base.suite={SUITE}",
            f"LABEL org.cloudrun-gtfs.base.python={version}",
            f"LABEL org.cloudrun-gtfs.base.equivalent-of={DEFAULT_BASE}",
            'LABEL org.opencontainers.image.description="Debian trixie minbase + python3"',
        ]
        args = ["docker", "import"]
        for change in changes:
            args += ["--change", change]
        _import_rootfs(rootfs, [*args, "-", tag])
        print(f"base image: built {tag} (python {version})", file=sys.stderr)  # noqa: T201
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _import_rootfs(rootfs: Path, docker_import: list[str]) -> None:
    """Stream a tar of `rootfs` into `docker import`.

    The context manager closes tar's pipe and waits for it on every path: a pipe
    left open is a ResourceWarning, which the test suite (filterwarnings=error)
    turns into a failure on the one run that builds the base, a fresh machine's
    first."""
    tar_args = ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."]
    with subprocess.Popen(tar_args, stdout=subprocess.PIPE) as tar:
        assert tar.stdout is not None
        try:
            subprocess.run(docker_import, stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL)
        finally:
            tar.stdout.close()
    if tar.returncode != 0:
        raise RuntimeError(f"tar of the base rootfs failed ({tar.returncode})")


def _slim(rootfs: Path) -> None:
    # Package indexes, caches and docs are not needed at run time.
    for rel in (
        "var/cache/apt",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "var/log",
    ):
        target = rootfs / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        child.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=os.environ.get("BASE_IMAGE", DEFAULT_BASE))
    args = parser.parse_args(argv)
    base = resolve(args.base)
    print(base.ref)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
