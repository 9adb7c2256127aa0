"""Build the wheelhouse each image installs from, on the host.

Two parts, cached separately under `.cache/wheelhouse/`:

- `deps-<key>/`: the third-party wheels of one service, downloaded as binaries for
  the image's Python (CPython 3.13, manylinux x86_64, glibc <= the base's), plus
  pip itself so the image can install them without carrying pip in the final venv.
  The key hashes the requirement specs and target, so an unchanged dependency set
  is reused without touching the network.
- `project-<key>/`: the project's own wheel (with the generated pipeline.v1 code),
  built with `--no-deps` from a copy of the working tree. The key hashes those
  files; SOURCE_DATE_EPOCH makes the wheel byte-identical for identical sources,
  so Docker's layer cache holds across commits that do not touch the code.

Each image gets only its own service's dependencies (pipeline: continuous-gtfs,
polars, grpc; console: FastAPI, uvicorn, google-auth, grpc), taken by name from
pyproject.toml so the version bounds live in one place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from harness.locks import file_lock
from harness.tree import REPO_ROOT, content_hash, tree_files

CACHE = REPO_ROOT / ".cache" / "wheelhouse"
PYTHON_VERSION = "3.13"
ABI = "cp313"
# python:3.13-slim is Debian bookworm (glibc 2.36); the local base is trixie (2.41).
# Wheels for any manylinux up to the older of the two run on both.
MAX_GLIBC_MINOR = 36
# Bump when the way the wheelhouse is made changes, to invalidate old caches.
RECIPE = "1"

SERVICE_DEPS: dict[str, tuple[str, ...]] = {
    "pipeline": (
        "continuous-gtfs",
        "polars",
        "grpcio",
        "grpcio-health-checking",
        "grpcio-reflection",
        "protobuf",
        # telemetry (issue 9): traces and metrics, OTLP over gRPC when configured.
        "opentelemetry-api",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-grpc",
        # ID-token verification (ADR 0018): google-auth fetches certificates with requests.
        "google-auth",
        "requests",
    ),
    "console": (
        "fastapi",
        "uvicorn",
        "python-multipart",
        "pydantic",
        "pydantic-settings",
        "google-auth",
        "requests",
        "grpcio",
        # /readyz asks the pipeline's grpc.health.v1 service.
        "grpcio-health-checking",
        "protobuf",
        # telemetry (issue 9): HTTP server spans, traces and metrics over OTLP/gRPC.
        "opentelemetry-api",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-grpc",
        "opentelemetry-instrumentation-fastapi",
    ),
}


@dataclasses.dataclass(frozen=True)
class Wheelhouse:
    deps_dir: Path
    project_dir: Path
    requirements: tuple[str, ...]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def service_requirements(service: str) -> tuple[str, ...]:
    """The pyproject requirement specs (with their bounds) one service needs."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    by_name: dict[str, str] = {}
    for spec in project["dependencies"]:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if match:
            by_name[_normalise(match.group(1))] = spec
    wanted = SERVICE_DEPS[service]
    missing = [name for name in wanted if _normalise(name) not in by_name]
    if missing:
        raise RuntimeError(f"pyproject.toml [project].dependencies lacks {missing}")
    return tuple(sorted(by_name[_normalise(name)] for name in wanted))


def _platforms() -> list[str]:
    # pip only expands the legacy manylinux aliases itself; list the PEP 600 ones.
    tags = [f"manylinux_2_{minor}_x86_64" for minor in range(MAX_GLIBC_MINOR, 4, -1)]
    return [*tags, "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _pip() -> list[str]:
    # The host interpreter is the project's venv (Python 3.13, as in the image).
    return [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def deps_wheelhouse(service: str) -> tuple[Path, tuple[str, ...]]:
    requirements = service_requirements(service)
    key = _digest(RECIPE, PYTHON_VERSION, ABI, str(MAX_GLIBC_MINOR), *requirements)
    target = CACHE / f"deps-{service}-{key}"
    if (target / "requirements.txt").exists():
        return target, requirements
    with file_lock(CACHE / f"deps-{service}.lock"):
        if (target / "requirements.txt").exists():
            return target, requirements
        tmp = Path(tempfile.mkdtemp(prefix=f"deps-{service}-", dir=CACHE))
        try:
            args = [*_pip(), "download", "--quiet", "--only-binary=:all:", "--dest", str(tmp)]
            args += ["--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", ABI]
            for platform in _platforms():
                args += ["--platform", platform]
            _run([*args, *requirements, "pip"])
            # Pin exactly what was downloaded, so the image installs these bytes only.
            pins = sorted(_pin(wheel) for wheel in tmp.glob("*.whl") if _name(wheel) != "pip")
            (tmp / "requirements.txt").write_text("\n".join(pins) + "\n")
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target, requirements


def _run(args: list[str], env: dict[str, str] | None = None) -> None:
    # pip is chatty about this machine's unused extra indexes; show it only on failure.
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"wheelhouse: {' '.join(args[:5])} … failed ({done.returncode})")


def _name(wheel: Path) -> str:
    return _normalise(wheel.name.split("-")[0])


def _pin(wheel: Path) -> str:
    name, version = wheel.name.split("-")[:2]
    return f"{_normalise(name)}=={version}"


def _ensure_proto() -> None:
    gen = REPO_ROOT / "services" / "proto" / "gen" / "pipeline" / "v1" / "pipeline_pb2.py"
    proto = REPO_ROOT / "services" / "proto" / "pipeline" / "v1" / "pipeline.proto"
    if not gen.exists() or gen.stat().st_mtime < proto.stat().st_mtime:
        subprocess.run(["make", "--no-print-directory", "proto"], cwd=REPO_ROOT, check=True)


def project_wheelhouse() -> Path:
    _ensure_proto()
    files = tree_files(include_generated=True)
    target = CACHE / f"project-{_digest(RECIPE, content_hash(files))}"
    if any(target.glob("*.whl")):
        return target
    with file_lock(CACHE / "project.lock"):
        if any(target.glob("*.whl")):
            return target
        work = Path(tempfile.mkdtemp(prefix="project-src-", dir=CACHE))
        try:
            src = work / "src"
            for rel in files:
                (src / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO_ROOT / rel, src / rel)
            # pyproject names README.md as the long description; a tree without
            # one yet must still build.
            (src / "README.md").touch()
            out = work / "out"
            env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
            args = [*_pip(), "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
            _run([*args, "--wheel-dir", str(out), str(src)], env=env)
            shutil.rmtree(target, ignore_errors=True)
            out.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def build(service: str) -> Wheelhouse:
    deps, requirements = deps_wheelhouse(service)
    return Wheelhouse(deps, project_wheelhouse(), requirements)
