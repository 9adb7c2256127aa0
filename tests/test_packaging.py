"""The wheel the images ship holds every package of the services and tools:
a subpackage missing from pyproject's explicit list would build an image that
cannot start (it happened once with console_server.routes)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_python_package_is_listed() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    mapping: dict[str, str] = setuptools["package-dir"]
    missing = []
    for top in listed:
        if "." in top:
            continue
        root = REPO / mapping.get(top, top)
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            if "tests" in parts or "gen" in parts:
                continue
            name = ".".join((top, *parts))
            if name not in listed:
                missing.append(name)
    assert not missing, f"add to [tool.setuptools] packages: {sorted(missing)}"
