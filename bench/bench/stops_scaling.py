"""Time of the stop steps versus stop count, on the shapes that used to be quadratic.

Each shape is a generated metro feed (tools/generate_feed.py, 2,000 stop_times
rows) with n extra stops appended to stops.txt; each step runs alone, in
process, through continuous-gtfs's executor, on a fresh copy of those tables:

    same_place    n stops `COi,c,45,-73,0,`: one name, one place (issue 17, row 6)
    chain         the same, each the parent_station of the next: n deep
    cycle         the chain closed into one parent_station cycle
    jitter        one name on a lattice 7 m apart: many near pairs, none identical
    served_station n copies under one station, every one served: all kept apart
    served_route  n parentless copies all served by one route: all kept apart
    served_chain  the chain with its deepest stop served: every link is kept

Usage:
    python -m bench.stops_scaling [--sizes 1000,2000,...] [--shapes ...] [--steps ...]
                                   [--budget 30] [--json out.json]

Prints one line per (shape, step) with seconds per size. Once a case takes
longer than --budget seconds the larger sizes of that line are skipped ("-"),
so a quadratic step cannot hold the run for hours.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
from continuous_gtfs import Step, execute_pipeline, scan_pipeline
from continuous_gtfs.pipelines import extract_zip
from continuous_gtfs.testing import schedule_context

from harness import feeds

REPO = Path(__file__).resolve().parents[2]
PIPELINE_DIR = REPO / "pipelines" / "metro_schedule"
SIZES = (1_000, 2_000, 4_000, 8_000, 16_000, 32_000)
STEPS = ("merge_stops", "remove_unused_stops", "validate_stop_hierarchy")
BASE_ROWS = 2_000
M_PER_DEG_LAT = 111_195.08


@functools.cache
def _base() -> dict[str, pl.DataFrame]:
    tables: dict[str, pl.DataFrame] = extract_zip(feeds.generator().build_feed(BASE_ROWS))
    return tables


@functools.cache
def steps() -> dict[str, Step]:
    return {s.name: s for s in scan_pipeline(PIPELINE_DIR)}


def _stops(n: int, parent: Callable[[int], str | None], **columns: list[str]) -> pl.DataFrame:
    data = {
        "stop_id": [f"CO{i}" for i in range(n)],
        "stop_name": ["c"] * n,
        "stop_lat": ["45"] * n,
        "stop_lon": ["-73"] * n,
        "location_type": ["0"] * n,
        "parent_station": [parent(i) for i in range(n)],
    }
    data.update(columns)
    return pl.DataFrame(data, schema=dict.fromkeys(data, pl.String))


def _served(stop_ids: list[str], route: str) -> dict[str, pl.DataFrame]:
    trips = [f"X{i}" for i in range(len(stop_ids))]
    return {
        "stop_times.txt": pl.DataFrame(
            {"trip_id": trips, "stop_id": stop_ids, "stop_sequence": ["1"] * len(trips)}
        ),
        "trips.txt": pl.DataFrame(
            {
                "route_id": [route] * len(trips),
                "service_id": ["WEEKDAY"] * len(trips),
                "trip_id": trips,
            }
        ),
    }


def shape_tables(shape: str, n: int) -> dict[str, pl.DataFrame]:
    """The base feed's tables with the shape's n stops (and their service) appended."""
    extra: dict[str, pl.DataFrame] = {}
    if shape == "same_place":
        stops = _stops(n, lambda i: None)
    elif shape in ("chain", "served_chain"):
        stops = _stops(n, lambda i: f"CO{i - 1}" if i else None)
        if shape == "served_chain":
            extra = _served([f"CO{n - 1}"], "RED")
    elif shape == "cycle":
        stops = _stops(n, lambda i: f"CO{(i - 1) % n}")
    elif shape == "jitter":
        side = int(n**0.5) + 1
        stops = _stops(
            n,
            lambda i: None,
            stop_lat=[repr(45 + 7 * (i // side) / M_PER_DEG_LAT) for i in range(n)],
            stop_lon=[repr(-73 + 7 * (i % side) / (M_PER_DEG_LAT * 0.7071)) for i in range(n)],
        )
    elif shape == "served_station":
        station = _stops(1, lambda i: None, stop_id=["COSTA"], location_type=["1"])
        stops = pl.concat([station, _stops(n, lambda i: "COSTA")])
        extra = _served([f"CO{i}" for i in range(n)], "RED")
    elif shape == "served_route":
        stops = _stops(n, lambda i: None)
        extra = _served([f"CO{i}" for i in range(n)], "RED")
    else:
        raise ValueError(f"unknown shape {shape!r}")
    tables = dict(_base())
    tables["stops.txt"] = pl.concat([tables["stops.txt"].cast(pl.String), stops], how="diagonal")
    for name, frame in extra.items():
        tables[name] = pl.concat([tables[name].cast(pl.String), frame], how="diagonal")
    return tables


SHAPES = (
    "same_place",
    "chain",
    "cycle",
    "jitter",
    "served_station",
    "served_route",
    "served_chain",
)


def time_step(step: str, shape: str, n: int) -> float:
    """Seconds one step takes on one shape of n stops (tables built beforehand)."""
    ctx = schedule_context(**shape_tables(shape, n))
    started = time.perf_counter()
    execute_pipeline([steps()[step]], ctx, fail_fast=False)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--budget", type=float, default=30.0, help="skip larger sizes after this")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    time_step(STEPS[0], SHAPES[0], 10)  # warm polars' pools and the imports
    header = f"{'shape':<15} {'step':<24}" + "".join(f"{n:>9,}" for n in sizes)
    print(f"seconds per step (stops appended to a {BASE_ROWS:,}-row generated feed)")
    print(header)
    results: dict[str, dict[str, dict[int, float]]] = {}
    for shape in args.shapes.split(","):
        for step in args.steps.split(","):
            line = f"{shape:<15} {step:<24}"
            print(line, end="", flush=True)
            skipping = False
            for n in sizes:
                if skipping:
                    print(f"{'-':>9}", end="", flush=True)
                    continue
                seconds = time_step(step, shape, n)
                results.setdefault(shape, {}).setdefault(step, {})[n] = seconds
                print(f"{seconds:>9.3f}", end="", flush=True)
                skipping = seconds > args.budget
            print()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
