"""Fixtures for the module checks: tools/provider_schema.py as a module, and the
providers' generated bindings it reads (from the project-wide `node_tools` fixture)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from testkit.scripts import load_tool


@pytest.fixture(scope="session")
def provider_schema() -> ModuleType:
    return load_tool("provider_schema.py")


@pytest.fixture(scope="session")
def bindings(node_tools: Path, provider_schema: ModuleType) -> object:
    return provider_schema.Bindings(node_tools / "node_modules" / "@cdktf")
