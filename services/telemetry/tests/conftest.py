"""Fixtures for the telemetry tests and the observability tests over the services.

Helpers live in fake_issuer.py and otlp_sink.py; pytest's importlib mode does not
put this folder on sys.path by itself. The names are unique across the repository.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_issuer import FakeIssuer


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as running:
        yield running
