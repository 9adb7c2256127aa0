"""tools/generate_feed.py: exact sizes, determinism, a consistent feed, the CLI."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest
from continuous_gtfs.pipelines import extract_zip, validate_gtfs


@pytest.mark.parametrize("rows", [2, 199, 200, 201, 12_345])
def test_stop_times_has_exactly_the_rows_asked_for(generate_feed: ModuleType, rows: int) -> None:
    feed = extract_zip(generate_feed.build_feed(rows))
    stop_times = feed["stop_times.txt"]
    assert stop_times.height == rows
    # Every trip has at least two stops, numbered from 1 without gaps.
    per_trip = stop_times.group_by("trip_id").agg(
        pl.len().alias("n"), pl.col("stop_sequence").cast(pl.Int64).max().alias("last")
    )
    assert per_trip["n"].min() >= 2  # type: ignore[operator]
    assert per_trip["n"].to_list() == per_trip["last"].to_list()


def test_feed_is_internally_consistent(generate_feed: ModuleType) -> None:
    feed = extract_zip(generate_feed.build_feed(generate_feed.MIN_FULL_ROWS * 2))
    assert validate_gtfs(feed) == {"errors": [], "warnings": []}
    stop_ids = set(feed["stops.txt"]["stop_id"].to_list())
    assert len(stop_ids) == feed["stops.txt"].height
    assert set(feed["stop_times.txt"]["stop_id"].to_list()) <= stop_ids
    assert set(feed["trips.txt"]["trip_id"].to_list()) == set(
        feed["stop_times.txt"]["trip_id"].to_list()
    )
    assert set(feed["trips.txt"]["service_id"].to_list()) <= set(
        feed["calendar.txt"]["service_id"].to_list()
    )
    for file, column in [
        ("transfers.txt", "from_stop_id"),
        ("transfers.txt", "to_stop_id"),
        ("pathways.txt", "from_stop_id"),
        ("pathways.txt", "to_stop_id"),
        ("stops.txt", "parent_station"),
    ]:
        assert set(feed[file][column].drop_nulls().to_list()) <= stop_ids, (file, column)


def test_same_arguments_same_bytes_and_the_seed_matters(generate_feed: ModuleType) -> None:
    assert generate_feed.build_feed(500, seed=1) == generate_feed.build_feed(500, seed=1)
    assert generate_feed.build_feed(500, seed=1) != generate_feed.build_feed(500, seed=2)


def test_too_few_rows_is_an_error(generate_feed: ModuleType) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        generate_feed.build_feed(1)


def test_cli_writes_the_feed(
    generate_feed: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nested" / "feed.zip"
    assert generate_feed.main(["--rows", "300", "--out", str(out), "--broken-hierarchy"]) == 0
    assert "300 stop_times rows" in capsys.readouterr().out
    assert out.read_bytes() == generate_feed.build_feed(300, broken_hierarchy=True)
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as zf:
        assert zf.testzip() is None


def test_cli_rejects_nonsense(
    generate_feed: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generate_feed.main(["--rows", "0", "--out", str(tmp_path / "f.zip")]) == 2
    assert "at least 2" in capsys.readouterr().err
