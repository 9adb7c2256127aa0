"""The access-log threshold: ACCESS_LOG_SLOW_MS parsed, bad values warned and defaulted."""

from __future__ import annotations

import logging

import pytest

from telemetry.access_log import DEFAULT_SLOW_MS, slow_call_seconds, worth_a_line


def test_unset_or_empty_is_the_default() -> None:
    assert slow_call_seconds({}) == DEFAULT_SLOW_MS / 1000 == 0.25
    assert slow_call_seconds({"ACCESS_LOG_SLOW_MS": "  "}) == 0.25


@pytest.mark.parametrize(("raw", "seconds"), [("0", 0.0), ("1000", 1.0), ("12.5", 0.0125)])
def test_milliseconds_become_seconds(raw: str, seconds: float) -> None:
    assert slow_call_seconds({"ACCESS_LOG_SLOW_MS": raw}) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["soon", "-1", "inf", "nan", "250ms"])
def test_a_bad_value_warns_and_keeps_the_default(
    raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="telemetry.access_log"):
        assert slow_call_seconds({"ACCESS_LOG_SLOW_MS": raw}) == 0.25
    (record,) = caplog.records
    assert f"ACCESS_LOG_SLOW_MS={raw}" in record.getMessage()


def test_failed_calls_always_slow_ones_at_the_threshold() -> None:
    assert worth_a_line(True, 0.0, 0.25)
    assert not worth_a_line(False, 0.2499, 0.25)
    assert worth_a_line(False, 0.25, 0.25)
    assert worth_a_line(False, 0.0, 0.0)  # 0: every call
