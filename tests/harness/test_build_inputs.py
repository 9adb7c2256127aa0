"""What goes into the images, decided without a Docker engine."""

from __future__ import annotations

import re

from harness import base_image, tree, wheelhouse


def test_wheels_target_the_older_glibc_of_the_two_bases() -> None:
    platforms = wheelhouse._platforms()
    assert platforms[0] == "manylinux_2_36_x86_64"
    assert "manylinux2014_x86_64" in platforms
    assert not any(p.startswith("manylinux_2_4") for p in platforms)


def test_only_service_inputs_change_the_content_label() -> None:
    files = [
        "README.md",
        "docs/adr/0001-x.md",
        "harness/harness/images.py",
        "services/pipeline/tests/test_x.py",
        "pipelines/tests/test_y.py",
        "pyproject.toml",
        "uv.lock",
        "services/Dockerfile",
        "services/console/console_server/app.py",
        "services/proto/pipeline/v1/pipeline.proto",
        "pipelines/metro_schedule/__init__.py",
        "envctl/envctl/cli.py",
    ]
    assert tree.image_inputs(files) == [
        "uv.lock",
        "services/Dockerfile",
        "services/console/console_server/app.py",
        "services/proto/pipeline/v1/pipeline.proto",
        "pipelines/metro_schedule/__init__.py",
    ]


def test_the_default_base_is_the_public_python_image() -> None:
    assert base_image.DEFAULT_BASE == "python:3.13-slim"
    text = (tree.REPO_ROOT / "services" / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE={base_image.DEFAULT_BASE}" in text
    assert "USER 10001" in text
    # One Dockerfile, one final stage per service (docker build --target SERVICE).
    assert re.findall(r"(?m)^FROM runtime AS (\w+)$", text) == ["pipeline", "console"]
