"""Fixtures of testkit's own tests: the Cloud Storage emulator."""

from __future__ import annotations

from testkit.gcs import gcs, gcs_emulator  # noqa: F401 - fixtures are found by name
