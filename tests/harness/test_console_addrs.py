"""The harness passes one pipeline address, or several for the console to
balance over, as the console's PIPELINE_ADDR (no container needed)."""

from __future__ import annotations

import pytest

from harness.containers import pipeline_addr_value


def test_one_address_is_passed_as_is() -> None:
    assert pipeline_addr_value("127.0.0.1:50051") == "127.0.0.1:50051"


def test_several_addresses_are_comma_separated() -> None:
    addrs = ("127.0.0.1:50051", "127.0.0.1:50052")
    assert pipeline_addr_value(addrs) == "127.0.0.1:50051,127.0.0.1:50052"


def test_no_address_is_refused() -> None:
    with pytest.raises(ValueError, match="no pipeline address"):
        pipeline_addr_value([])
