"""The fresh-machine path, tested on every run: the base image and a wheelhouse
made from nothing, under the suite's filterwarnings=error.

Everywhere else the base image and the wheelhouse are cached, so after the first
run nothing would exercise their construction again; a ResourceWarning in the
base-image build once failed only a new machine's first `make test`.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from harness import base_image, wheelhouse

pytestmark = pytest.mark.docker


def test_the_local_base_image_builds_from_nothing() -> None:
    tag = f"local/python:fresh-{uuid.uuid4().hex[:12]}"
    try:
        base_image.build_local_base(tag)
        done = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                tag,
                "python3",
                "-c",
                "import sys, ssl; print(sys.version_info[:2])",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert done.stdout.strip() == "(3, 13)"
    finally:
        subprocess.run(["docker", "rmi", "--force", tag], capture_output=True, check=False)


def test_a_wheelhouse_builds_from_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheelhouse, "CACHE", tmp_path / "wheelhouse")
    house = wheelhouse.build("console")
    wheels = {p.name.split("-")[0].lower().replace("_", "-") for p in house.deps_dir.glob("*.whl")}
    assert set(wheelhouse.pins("console")) <= wheels | {"pip"}
    assert (house.deps_dir / "requirements.txt").read_text().count("--hash=sha256:") > 0
    members = sorted(p.name.split("-")[0] for p in house.members_dir.glob("*.whl"))
    assert members == ["console_server", "pipeline_proto", "service_telemetry"]
