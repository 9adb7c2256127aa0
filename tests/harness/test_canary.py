"""``python -m harness.canary``: two pipeline images in containers, the reference feeds
through each, compared. Identical images agree; an image whose pipeline has one more
step that drops stop_times rows (built FROM this commit's image) is caught."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import canary, images
from testkit.pipeline_variants import VARIANTS


def derived_image(base: str, variant: str, workdir: Path) -> Iterator[str]:
    """``base`` with the variant's step module added to /app/pipelines/metro_schedule."""
    (workdir / f"{variant}.py").write_text(VARIANTS[variant], encoding="utf-8")
    (workdir / "Dockerfile").write_text(
        f"FROM {base}\nCOPY {variant}.py /app/pipelines/metro_schedule/{variant}.py\n"
    )
    ref = f"gtfs-pipeline-variant:{variant.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # as harness.images: no registry needed
    subprocess.run(
        ["docker", "build", "--quiet", "-t", ref, "."],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
    )
    try:
        yield ref
    finally:
        subprocess.run(["docker", "rmi", "--force", ref], capture_output=True, check=False)


@pytest.fixture
def dropping_image(built_images: images.Build, tmp_path: Path) -> Iterator[str]:
    yield from derived_image(built_images.ref("pipeline"), "drop_stop_times_rows", tmp_path)


@pytest.fixture
def rebranded_image(built_images: images.Build, tmp_path: Path) -> Iterator[str]:
    yield from derived_image(built_images.ref("pipeline"), "rebrand_feed_info", tmp_path)


def test_identical_images_agree(
    built_images: images.Build, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = built_images.ref("pipeline")
    report = tmp_path / "canary.json"
    head = built_images.commit
    status = canary.main(
        [head, head, "--old-image", ref, "--new-image", ref, "--report", str(report)]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    evidence = json.loads(report.read_text())
    assert evidence["kind"] == "canary"
    assert {c["status"] for c in evidence["checks"]} == {"pass"}
    # Both reference feeds of local.yaml, each with all four checks.
    assert sorted({c["feed"] for c in evidence["checks"]}) == [
        "metro-2000.zip",
        "metro-5000-seed7.zip",
    ]
    assert len(evidence["checks"]) == 8
    assert "agrees with the baseline" in out


def test_a_step_that_drops_rows_is_caught(
    built_images: images.Build,
    dropping_image: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = tmp_path / "canary.json"
    head = built_images.commit
    args = [head, head, "--old-image", built_images.ref("pipeline"), "--new-image", dropping_image]
    assert canary.main([*args, "--report", str(report)]) == 1
    captured = capsys.readouterr()
    assert "disagrees with" in captured.err
    assert (
        "stop_times.txt: 1800 rows, the baseline 2000 (-200, 10.00 % > 0 % allowed)" in captured.out
    )
    assert "stop_times.txt: 4500 rows, the baseline 5000" in captured.out
    failed = {
        (c["feed"], c["name"])
        for c in json.loads(report.read_text())["checks"]
        if c["status"] == "fail"
    }
    assert failed == {("metro-2000.zip", "rows"), ("metro-5000-seed7.zip", "rows")}


def test_a_changed_publisher_is_caught_with_both_values(
    built_images: images.Build, rebranded_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    head = built_images.commit
    args = [head, head, "--old-image", built_images.ref("pipeline"), "--new-image", rebranded_image]
    assert canary.main(args) == 1
    out = capsys.readouterr().out
    assert "row 1 feed_publisher_name: 'Vendor Inc', the baseline 'Metro Transit Data'" in out


def test_a_revision_that_is_not_a_commit_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert canary.main(["no-such-revision", "HEAD"]) == 1
    assert "'no-such-revision' is not a commit" in capsys.readouterr().err
