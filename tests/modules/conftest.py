"""Fixtures for the OpenTofu module tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = REPO_ROOT / "modules"


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def modules_root() -> Path:
    return MODULES
