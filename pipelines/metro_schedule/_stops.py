"""Helpers the stop steps share: the stop hierarchy as a tidy frame, and the
columns elsewhere in a feed that point at stops.txt.

Not a step module: the leading underscore keeps ``scan_pipeline`` from
importing it on its own; the steps import it relatively.
"""

from __future__ import annotations

from typing import Any

import polars as pl

STOPS = "stops.txt"
STOP_TIMES = "stop_times.txt"
TRIPS = "trips.txt"
TRANSFERS = "transfers.txt"
PATHWAYS = "pathways.txt"

# stops.txt location_type values (GTFS reference). An empty value means 0.
STOP_OR_PLATFORM = "0"
STATION = "1"
ENTRANCE_EXIT = "2"
GENERIC_NODE = "3"
BOARDING_AREA = "4"
KNOWN_LOCATION_TYPES = (STOP_OR_PLATFORM, STATION, ENTRANCE_EXIT, GENERIC_NODE, BOARDING_AREA)

# Every (file, column) that holds a stops.txt stop_id. Merging rewrites all of
# them; removing stops drops the rows that point at a removed stop.
STOP_REFERENCES: tuple[tuple[str, str], ...] = (
    (STOP_TIMES, "stop_id"),
    (TRANSFERS, "from_stop_id"),
    (TRANSFERS, "to_stop_id"),
    (PATHWAYS, "from_stop_id"),
    (PATHWAYS, "to_stop_id"),
    (STOPS, "parent_station"),
    # GTFS-Fares v2 areas list member stops by id as well.
    ("stop_areas.txt", "stop_id"),
)


def text_column(df: pl.DataFrame, column: str) -> pl.Expr:
    """The column as text with "" read as null, or all-null when it is absent.

    GTFS treats an empty field and a missing column alike; reading both as null
    lets every rule below test one thing.
    """
    if column not in df.columns:
        return pl.lit(None, dtype=pl.String)
    text = pl.col(column).cast(pl.String)
    return pl.when(text.str.len_chars() == 0).then(None).otherwise(text)


def hierarchy_view(stops: pl.DataFrame) -> pl.DataFrame:
    """stop_id, location_type ("0" for empty/absent) and parent_station (null
    for empty/absent), one row per stops.txt row, in file order.

    A read-only view: steps decide from it and then filter or rewrite the
    original frame, so columns they do not know about pass through untouched.
    """
    return stops.select(
        pl.col("stop_id").cast(pl.String),
        text_column(stops, "location_type").fill_null(STOP_OR_PLATFORM).alias("location_type"),
        text_column(stops, "parent_station").alias("parent_station"),
    )


def used_stop_ids(output: dict[str, Any]) -> pl.Series | None:
    """The distinct stop_ids stop_times.txt serves, or None when the feed has no
    stop_times.txt (then "unused" means nothing and callers must not act on it)."""
    stop_times = output.get(STOP_TIMES)
    if not isinstance(stop_times, pl.DataFrame) or "stop_id" not in stop_times.columns:
        return None
    return stop_times.get_column("stop_id").cast(pl.String).unique()


def present_references(output: dict[str, Any]) -> list[tuple[str, str]]:
    """The STOP_REFERENCES this feed actually has (optional files and columns
    may be missing)."""
    return [
        (file, column)
        for file, column in STOP_REFERENCES
        if isinstance(output.get(file), pl.DataFrame) and column in output[file].columns
    ]
