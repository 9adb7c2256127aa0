"""The log-linear histogram: bucket layout, percentiles, merging, files."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.histogram import (
    Histogram,
    bucket_bounds,
    bucket_index,
    exact_percentile,
    sample_summary,
)


@given(st.integers(min_value=0, max_value=10**12))
def test_every_value_lies_in_its_bucket_and_the_bucket_is_narrow(value: int) -> None:
    low, high = bucket_bounds(bucket_index(value))
    assert low <= value <= high
    # At most 1/128 of the bucket's values wide: the advertised 0.8 % resolution.
    assert high - low + 1 <= max(1, low / 128)


def test_buckets_are_contiguous_and_ordered() -> None:
    previous_high = -1
    for index in range(0, 256 + 128 * 20):
        low, high = bucket_bounds(index)
        assert low == previous_high + 1
        assert bucket_index(low) == index == bucket_index(high)
        previous_high = high


def test_small_values_are_exact() -> None:
    h = Histogram.of([3, 1, 2, 255])
    assert h.value_at(25) == 1
    assert h.value_at(50) == 2
    assert h.value_at(100) == 255
    assert (h.min, h.max, h.count, h.total) == (1, 255, 4, 261)


def test_percentiles_match_exact_nearest_rank_within_bucket_error() -> None:
    rng = random.Random(7)
    # Latency-like: log-normal around 500 µs with a long tail.
    values = [int(rng.lognormvariate(math.log(500), 0.8)) for _ in range(20_000)]
    h = Histogram.of(values)
    for p in (1, 50, 90, 95, 99, 99.9, 100):
        exact = exact_percentile([float(v) for v in values], p)
        got = h.value_at(p)
        # Never under-states, and over-states by at most one bucket (≤ 1/128).
        assert exact <= got <= exact * (1 + 1 / 128) + 1, (p, exact, got)
    assert h.value_at(100) == max(values)
    assert h.mean == pytest.approx(sum(values) / len(values))


def test_a_percentile_never_exceeds_the_largest_value_seen() -> None:
    h = Histogram.of([1000, 1001, 1002])  # all in one bucket
    assert h.value_at(50) <= 1002
    assert h.value_at(1) >= 1000


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(1)
    a_values = [rng.randrange(0, 100_000) for _ in range(3000)]
    b_values = [rng.randrange(50, 5_000_000) for _ in range(2000)]
    merged = Histogram.merged([Histogram.of(a_values), Histogram.of(b_values), Histogram()])
    assert merged.to_json() == Histogram.of(a_values + b_values).to_json()


def test_merging_into_an_empty_histogram_takes_the_other_minimum() -> None:
    h = Histogram()
    h.merge(Histogram.of([700, 900]))
    assert (h.min, h.max) == (700, 900)


def test_json_round_trip() -> None:
    h = Histogram.of([5, 500, 50_000, 5_000_000, 5_000_000])
    again = Histogram.from_json(h.to_json())
    assert again.to_json() == h.to_json()
    assert again.summary() == h.summary()


def test_a_tampered_file_is_refused() -> None:
    data = Histogram.of([1, 2, 3]).to_json()
    data["count"] = 4
    with pytest.raises(ValueError, match="add up"):
        Histogram.from_json(data)
    data = Histogram.of([1]).to_json()
    data["sub_bucket_bits"] = 5
    with pytest.raises(ValueError, match="layout"):
        Histogram.from_json(data)


def test_empty_histogram_reports_zeros() -> None:
    h = Histogram()
    assert h.value_at(99) == 0
    assert h.summary()["count"] == 0
    assert h.mean == 0.0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        Histogram().record(-1)
    with pytest.raises(ValueError, match="percentile"):
        Histogram.of([1]).value_at(0)
    with pytest.raises(ValueError, match="percentile"):
        Histogram.of([1]).value_at(100.1)


def test_sample_summary_uses_exact_nearest_rank() -> None:
    s = sample_summary([0.4, 0.2, 0.3, 0.1])
    assert s["count"] == 4
    assert s["p50"] == 0.2
    assert s["p90"] == s["max"] == 0.4
    assert sample_summary([])["p50"] == 0.0
