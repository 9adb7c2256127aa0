"""Fixtures for the module checks: tools/provider_schema.py as a module, and the
providers' generated bindings it reads (from the project-wide `node_tools` fixture)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "provider_schema.py"


@pytest.fixture(scope="session")
def provider_schema() -> ModuleType:
    """tools/ is not a package; load provider_schema.py by path, once per process."""
    name = "provider_schema_under_test"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bindings(node_tools: Path, provider_schema: ModuleType) -> object:
    return provider_schema.Bindings(node_tools / "node_modules" / "@cdktf")
