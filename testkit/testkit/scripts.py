"""Load a script of ``tools/`` (a folder of scripts, not a package) as a module.

The tests of tools/adr.py and tools/provider_schema.py, and everything that builds
feeds with tools/generate_feed.py, load them by path. The module is registered in
``sys.modules`` under ``name`` before it runs (dataclasses look their module up
while a class is built) and loaded once per process.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = REPO_ROOT / "tools"


def load_script(path: Path, name: str) -> ModuleType:
    """The script at ``path`` as the module ``name`` (the same object on every call)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_tool(filename: str) -> ModuleType:
    """tools/<filename> as a module named after it (``adr.py`` → ``tools_adr``)."""
    return load_script(TOOLS / filename, f"tools_{Path(filename).stem}")
