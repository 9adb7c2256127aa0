"""A log-linear latency histogram in the spirit of HdrHistogram, in pure Python.

Locust keeps response times in whole milliseconds below 100 ms, and a warm
loopback RPC takes a few hundred microseconds, so its percentiles say "0" or
"1". The bench records every call in microseconds into this histogram instead.

Buckets: values below 2**SUB_BUCKET_BITS (256 µs) get one bucket per µs; above,
every power-of-two range [2**k, 2**(k+1)) is split into 2**(SUB_BUCKET_BITS-1)
(128) equal buckets. The width of a bucket is therefore at most 1/128 (0.78 %)
of the values in it, at any magnitude, with no upper bound to configure. Counts
are sparse (a dict), so a histogram of a run is a few hundred entries and
merges across Locust worker processes by adding counts.

Percentiles follow HdrHistogram's convention: the value at a percentile is the
highest value equivalent to the bucket that reaches the rank (clamped to the
largest value seen), so a reported percentile never under-states the truth by
more than one bucket width.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

SUB_BUCKET_BITS = 8
_SUB_COUNT = 1 << SUB_BUCKET_BITS  # 256: values below this are exact
_HALF = _SUB_COUNT >> 1  # 128 buckets per power of two above that

#: The percentiles every report shows, in this order.
REPORTED_PERCENTILES = (50.0, 90.0, 95.0, 99.0)


def bucket_index(value: int) -> int:
    """Index of the bucket holding `value` (a non-negative integer)."""
    if value < _SUB_COUNT:
        return value
    shift = value.bit_length() - SUB_BUCKET_BITS  # >= 1
    mantissa = value >> shift  # in [_HALF, _SUB_COUNT)
    return _SUB_COUNT + (shift - 1) * _HALF + (mantissa - _HALF)


def bucket_bounds(index: int) -> tuple[int, int]:
    """(lowest, highest) value held by bucket `index`, both inclusive."""
    if index < _SUB_COUNT:
        return index, index
    shift, offset = divmod(index - _SUB_COUNT, _HALF)
    shift += 1
    low = (_HALF + offset) << shift
    return low, low + (1 << shift) - 1


class Histogram:
    """Counts of integer values (microseconds, by convention) in log-linear buckets."""

    __slots__ = ("_counts", "count", "max", "min", "total")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    def record(self, value: int, count: int = 1) -> None:
        if value < 0:
            raise ValueError(f"a histogram records non-negative values, not {value}")
        if count <= 0:
            return
        index = bucket_index(value)
        self._counts[index] = self._counts.get(index, 0) + count
        if self.count == 0 or value < self.min:
            self.min = value
        self.max = max(self.max, value)
        self.count += count
        self.total += value * count

    def merge(self, other: Histogram) -> None:
        if other.count == 0:
            return
        for index, n in other._counts.items():
            self._counts[index] = self._counts.get(index, 0) + n
        self.min = other.min if self.count == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    @classmethod
    def merged(cls, histograms: Iterable[Histogram]) -> Histogram:
        result = cls()
        for h in histograms:
            result.merge(h)
        return result

    @classmethod
    def of(cls, values: Iterable[int]) -> Histogram:
        result = cls()
        for v in values:
            result.record(v)
        return result

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def value_at(self, percentile: float) -> int:
        """The value at `percentile` (0-100]; 0 for an empty histogram."""
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], not {percentile}")
        if self.count == 0:
            return 0
        # Nearest rank: the smallest value with at least p % of the values at or below it.
        rank = max(1, math.ceil(percentile / 100.0 * self.count))
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                return max(self.min, min(bucket_bounds(index)[1], self.max))
        return self.max  # pragma: no cover - the counts always add up to self.count

    def buckets(self) -> Iterator[tuple[int, int, int]]:
        """(lowest value, highest value, count) of every non-empty bucket, ascending."""
        for index in sorted(self._counts):
            low, high = bucket_bounds(index)
            yield low, high, self._counts[index]

    def summary(self) -> dict[str, float | int]:
        """count, min, mean, p50/p90/p95/p99/p99.9, max: the numbers a report prints."""
        out: dict[str, float | int] = {
            "count": self.count,
            "min": self.min,
            "mean": round(self.mean, 1),
        }
        for p in (*REPORTED_PERCENTILES, 99.9):
            out[percentile_key(p)] = self.value_at(p)
        out["max"] = self.max
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": "us",
            "sub_bucket_bits": SUB_BUCKET_BITS,
            "count": self.count,
            "total": self.total,
            "min": self.min,
            "max": self.max,
            # JSON object keys are strings; a list of pairs keeps them integers.
            "buckets": sorted(self._counts.items()),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Histogram:
        if data.get("sub_bucket_bits", SUB_BUCKET_BITS) != SUB_BUCKET_BITS:
            raise ValueError("histogram written with a different bucket layout")
        h = cls()
        h._counts = {int(i): int(n) for i, n in data["buckets"]}
        h.count = int(data["count"])
        h.total = int(data["total"])
        h.min = int(data["min"])
        h.max = int(data["max"])
        if sum(h._counts.values()) != h.count:
            raise ValueError("histogram counts do not add up to its total count")
        return h

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, p50={self.value_at(50) if self.count else 0} us)"


def percentile_key(p: float) -> str:
    """50 → "p50", 99.9 → "p99.9": the key used in JSON and the Markdown table."""
    return f"p{p:g}"


def exact_percentile(values: list[float], percentile: float) -> float:
    """Nearest-rank percentile of a small sample (the cold samples), no buckets."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100.0 * len(ordered)))
    return ordered[rank - 1]


def sample_summary(values: list[float]) -> dict[str, float | int]:
    """The same keys as Histogram.summary, for a list of exact samples."""
    out: dict[str, float | int] = {
        "count": len(values),
        "min": min(values) if values else 0.0,
        "mean": sum(values) / len(values) if values else 0.0,
    }
    for p in (*REPORTED_PERCENTILES, 99.9):
        out[percentile_key(p)] = exact_percentile(values, p)
    out["max"] = max(values) if values else 0.0
    return out
