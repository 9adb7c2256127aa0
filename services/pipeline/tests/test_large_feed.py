"""A generated feed of one million stop_times rows runs through RunPipeline on
a real server process; the benchmark's memory bound (a multiple of the feed's
uncompressed size, not a time) holds."""

from __future__ import annotations

from bench.pipeline_memory import measure


def test_million_row_feed_completes_within_memory_bound() -> None:
    report = measure(1_000_000)
    assert report.run_status == "RUN_STATUS_COMPLETED"
    assert report.uncompressed_bytes > 30 * 1024 * 1024
    assert report.output_bytes > 0
    assert report.multiple <= report.max_multiple, report
