"""GTFS feeds for the container tests, from tools/generate_feed.py.

tools/ is not a package; the generator is loaded from its file so the tests use
exactly the feeds the pipeline's own tests and the bench use.
"""

from __future__ import annotations

import functools
import importlib.util
from types import ModuleType

from harness.tree import REPO_ROOT

SMALL_ROWS = 2_000


@functools.cache
def generator() -> ModuleType:
    path = REPO_ROOT / "tools" / "generate_feed.py"
    spec = importlib.util.spec_from_file_location("harness_generate_feed", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def feed(rows: int = SMALL_ROWS, broken_hierarchy: bool = False) -> bytes:
    data: bytes = generator().build_feed(rows, broken_hierarchy=broken_hierarchy)
    return data
