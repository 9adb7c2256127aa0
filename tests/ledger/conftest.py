"""Fixtures for the release-lifecycle scenarios: a World per merge method."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .world import METHODS, World, fresh_warnings


@pytest.fixture(params=METHODS)
def world(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """A fresh origin whose main takes merges by ``squash``, ``merge`` or ``rebase``."""
    monkeypatch.setenv("ENVCTL_NOW", "2026-06-10T10:00:00Z")  # restored after the test
    for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    with fresh_warnings():
        yield World.create(tmp_path, str(request.param))


@pytest.fixture
def squash_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """One world with the method the repository requires (squash), for scenarios whose
    outcome cannot depend on the merge method."""
    monkeypatch.setenv("ENVCTL_NOW", "2026-06-10T10:00:00Z")
    for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    with fresh_warnings():
        yield World.create(tmp_path, "squash")
