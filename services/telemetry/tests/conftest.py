"""Fixtures for the telemetry tests and the observability tests over the services.

Helpers live in testkit (testkit.id_tokens, testkit.otlp_sink).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.id_tokens import FakeIssuer


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as running:
        yield running
