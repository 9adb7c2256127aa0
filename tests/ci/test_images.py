"""Publishing and copying images, against fake crane/docker commands on PATH."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envctl.ci.images import ImageError, ensure_images, publish
from envctl.load import load_environment

from .conftest import EditEnv, commit_all

HERE = Path(__file__).parent
COMMIT = "c" * 40
DEV = "europe-west1-docker.pkg.dev/gtfs-gitops-dev/services"
STAGING = "europe-west1-docker.pkg.dev/gtfs-gitops-staging/services"

State = dict[str, Any]


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], State]:
    """Install fake ``crane`` and ``docker`` first on PATH; return a reader of their state."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    source = (HERE / "fake_registry.py").read_text()
    for tool in ("crane", "docker"):
        path = bin_dir / tool
        path.write_text(f"#!{sys.executable}\n{source}")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    state_file = tmp_path / "registry.json"
    state_file.write_text(json.dumps({"manifests": [], "tags": {}, "local": {}, "calls": []}))
    monkeypatch.setenv("FAKE_REGISTRY", str(state_file))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def read() -> State:
        state: State = json.loads(state_file.read_text())
        return state

    return read


def _seed(registry: Callable[[], State], change: Callable[[State], None]) -> None:
    path = Path(os.environ["FAKE_REGISTRY"])
    state = registry()
    change(state)
    path.write_text(json.dumps(state))


def _manifest(tmp_path: Path, *, dirty: bool = False, platform: str = "linux/amd64") -> Path:
    tag = f"{COMMIT}-dirty" if dirty else COMMIT
    build = {
        "commit": COMMIT,
        "tag": tag,
        "dirty": dirty,
        "base": "python:3.13-slim",
        "images": {
            svc: {
                "service": svc,
                "ref": f"gtfs-{svc}:{tag}",
                "id": f"sha256:{svc}-id",
                "size": 1,
                "reused": False,
                "seconds": 1.0,
            }
            for svc in ("pipeline", "console")
        },
    }
    path = tmp_path / "images.json"
    path.write_text(json.dumps(build))
    return path


def _local(registry: Callable[[], State], platform: str = "linux/amd64") -> None:
    def add(state: State) -> None:
        for svc in ("pipeline", "console"):
            state["local"][f"gtfs-{svc}:{COMMIT}"] = {"platform": platform, "id": f"{svc}-id"}

    _seed(registry, add)


def test_publish_pushes_each_tag_once_and_reads_digests_back(
    tmp_path: Path, registry: Callable[[], State]
) -> None:
    _local(registry)
    manifest = _manifest(tmp_path)
    first = publish(DEV, manifest, ["pipeline", "console"])
    assert [(p.service, p.pushed) for p in first] == [("console", True), ("pipeline", True)]
    assert first[0].ref == f"{DEV}/console:{COMMIT}"
    assert first[0].digest == registry()["tags"][f"{DEV}/console:{COMMIT}"]
    again = publish(DEV, manifest, ["pipeline", "console"])
    assert [p.pushed for p in again] == [False, False]
    assert [p.digest for p in again] == [p.digest for p in first]
    pushes = [c for c in registry()["calls"] if c[:2] == ["docker", "push"]]
    assert len(pushes) == 2  # a re-run pushes nothing


def test_publish_refuses_a_dirty_build(tmp_path: Path, registry: Callable[[], State]) -> None:
    with pytest.raises(ImageError, match="dirty tree"):
        publish(DEV, _manifest(tmp_path, dirty=True))
    assert registry()["calls"] == []


def test_publish_refuses_an_image_cloud_run_cannot_run(
    tmp_path: Path, registry: Callable[[], State]
) -> None:
    _local(registry, platform="linux/arm64")
    with pytest.raises(ImageError, match="built for linux/arm64; Cloud Run needs linux/amd64"):
        publish(DEV, _manifest(tmp_path))
    assert registry()["tags"] == {}


def test_registry_errors_other_than_not_found_are_not_swallowed(
    tmp_path: Path, registry: Callable[[], State]
) -> None:
    _local(registry)
    with pytest.raises(ImageError, match="UNAUTHORIZED"):
        publish("europe-west1-docker.pkg.dev/denied/services", _manifest(tmp_path))


def _point_staging_at(repo: Path, edit_env: EditEnv, digests: dict[str, str]) -> None:
    def change(doc: Any) -> None:
        for svc, digest in digests.items():
            doc["services"][svc]["image"]["commit"] = COMMIT
            doc["services"][svc]["image"]["digest"] = digest

    edit_env(repo, "staging", change)
    commit_all(repo, "staging: new images")


def test_promoted_images_are_copied_by_digest_from_the_source_registry(
    env_repo: Path, edit_env: EditEnv, registry: Callable[[], State]
) -> None:
    digests = {"pipeline": "sha256:" + "1" * 64, "console": "sha256:" + "2" * 64}

    def in_dev(state: State) -> None:
        for svc, digest in digests.items():
            state["manifests"].append(f"{DEV}/{svc}@{digest}")
            state["tags"][f"{DEV}/{svc}:{COMMIT}"] = digest

    _seed(registry, in_dev)
    _point_staging_at(env_repo, edit_env, digests)
    copies = ensure_images(env_repo, "staging")
    assert {c.service: c.source for c in copies} == {
        svc: f"{DEV}/{svc}@{digest}" for svc, digest in digests.items()
    }
    assert registry()["tags"][f"{STAGING}/pipeline:{COMMIT}"] == digests["pipeline"]
    # Present now: a second run copies nothing.
    assert all(c.source is None for c in ensure_images(env_repo, "staging"))


def test_a_tag_that_names_other_bytes_is_never_moved(
    env_repo: Path, edit_env: EditEnv, registry: Callable[[], State]
) -> None:
    digests = {"pipeline": "sha256:" + "1" * 64, "console": "sha256:" + "2" * 64}
    _point_staging_at(env_repo, edit_env, digests)
    _seed(
        registry, lambda s: s["tags"].update({f"{STAGING}/pipeline:{COMMIT}": "sha256:" + "9" * 64})
    )
    with pytest.raises(ImageError, match="a tag is never moved"):
        ensure_images(env_repo, "staging")


def test_dev_images_come_from_the_build_not_from_a_copy(
    env_repo: Path, registry: Callable[[], State]
) -> None:
    dev = load_environment(env_repo, "dev")
    with pytest.raises(ImageError, match="no cloud promotion source"):
        ensure_images(env_repo, "dev")
    pipeline = dev.image("pipeline")
    _seed(registry, lambda s: s["manifests"].append(f"{DEV}/pipeline@{pipeline.digest}"))
    _seed(registry, lambda s: s["manifests"].append(f"{DEV}/console@{dev.image('console').digest}"))
    # The bytes are there without the commit tag: tag them, copy nothing.
    copies = ensure_images(env_repo, "dev")
    assert all(c.source is None for c in copies)
    assert registry()["tags"][f"{DEV}/pipeline:{pipeline.commit}"] == pipeline.digest
