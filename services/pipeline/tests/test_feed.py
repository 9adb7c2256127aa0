"""inspect_feed on damaged real zips: whatever the bytes, the answer is a
FeedSummary or a FeedError with a short reason, never another exception (which
the servicer would turn into gRPC UNKNOWN)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_server.feed import FeedError, FeedLimits, inspect_feed
from testkit.zips import corrupt_first_deflate, make_zip, with_extract_version

LIMITS = FeedLimits(max_uncompressed_bytes=1 << 30, max_compression_ratio=200, max_entries=1000)
# Reasons are the server's own words; the longest carries one bounded entry name.
MAX_REASON = 200


def _inspect(tmp_path: Path, data: bytes) -> None:
    upload = tmp_path / "feed.zip"
    upload.write_bytes(data)
    inspect_feed(upload, LIMITS)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (corrupt_first_deflate, "compressed data is corrupt"),
        (lambda good: with_extract_version(good, 228), "needs zip version 22.8"),
        (lambda good: with_extract_version(good, 0xFFFF), "needs zip version 25.5"),
    ],
    ids=["corrupt-deflate", "version-22.8", "version-max"],
)
def test_damage_is_a_feed_error(tmp_path: Path, tiny_feed: bytes, damage, expected: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FeedError) as err:
        _inspect(tmp_path, damage(tiny_feed))
    assert expected in str(err.value)
    assert len(str(err.value)) <= MAX_REASON


def test_every_byte_flipped_is_a_summary_or_a_feed_error(tmp_path: Path, tiny_feed: bytes) -> None:
    good = tiny_feed
    reasons: list[str] = []
    for at in range(len(good)):
        for value in (0x00, 0xFF, good[at] ^ 0x01):
            damaged = bytearray(good)
            damaged[at] = value
            try:
                _inspect(tmp_path, bytes(damaged))
            except FeedError as exc:  # anything else fails the test
                reasons.append(str(exc))
    assert reasons, "some damage must be noticed"
    too_long = [r for r in reasons if len(r) > MAX_REASON]
    assert not too_long, too_long[:3]


def test_long_entry_names_are_quoted_bounded(tmp_path: Path) -> None:
    with pytest.raises(FeedError) as err:
        _inspect(tmp_path, make_zip({"a" * 5000 + "/stops.txt": "stop_id\n"}))
    assert "inside a folder" in str(err.value)
    assert len(str(err.value)) <= MAX_REASON
