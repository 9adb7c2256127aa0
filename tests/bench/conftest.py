"""Fixtures of the bench tests: the harness's images (built once per session)."""

from __future__ import annotations

from harness.fixtures import built_images  # noqa: F401 - fixtures are found by name
