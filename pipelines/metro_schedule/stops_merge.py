"""Step 2: merge duplicate stops and rewrite every reference to the survivor."""

from __future__ import annotations

import itertools
import logging
import math
import unicodedata
from collections.abc import Iterable
from typing import Any

import polars as pl
from continuous_gtfs import PipelineContext, step

from . import MERGE_DISTANCE_M
from ._stops import (
    BOARDING_AREA,
    ENTRANCE_EXIT,
    GENERIC_NODE,
    PATHWAYS,
    STATION,
    STOP_OR_PLATFORM,
    STOP_REFERENCES,
    STOP_TIMES,
    STOPS,
    TRANSFERS,
    TRIPS,
    hierarchy_view,
    present_references,
    text_column,
    used_stop_ids,
)
from .feed_info import update_feed_info

log = logging.getLogger(__name__)

#: Finding code: one info summary per run with the counts.
STOPS_MERGED = "stops_merged"

# Mean Earth radius (IUGG); the usual haversine constant.
EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180

# Parents before children: two stops may only merge when their parents are the
# same stop *after* the earlier passes. Stations have no parent; platforms,
# entrances and generic nodes hang off a station; boarding areas off a platform.
_PASSES: tuple[tuple[str, ...], ...] = (
    (STATION,),
    (STOP_OR_PLATFORM, ENTRANCE_EXIT, GENERIC_NODE),
    (BOARDING_AREA,),
)

# Apostrophes join what they separate ("St. Paul's" ~ "St Pauls"); any other
# punctuation separates words ("Jean-Talon" ~ "Jean Talon", "St./5th" ~ "St 5th").
_APOSTROPHES = frozenset("'’ʼ`")

# How many individual merges to log before summarising; the finding has the totals.
_LOGGED_MERGES = 20


def normalise_name(name: str) -> str:
    """The comparison key of a stop name: casefolded, apostrophes removed, other
    punctuation turned into spaces, whitespace collapsed."""
    chars = (
        " " if unicodedata.category(ch).startswith("P") else ch
        for ch in name.casefold()
        if ch not in _APOSTROPHES
    )
    return " ".join("".join(chars).split())


def _haversine_m(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    phi1, phi2 = lat1.radians(), lat2.radians()
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = (lon2 - lon1).radians() / 2
    a = half_dphi.sin() ** 2 + phi1.cos() * phi2.cos() * half_dlambda.sin() ** 2
    # clip: rounding can push `a` a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_M * a.sqrt().clip(upper_bound=1.0).arcsin()


def _coordinate(stops: pl.DataFrame, column: str, limit: float) -> pl.Expr:
    value = text_column(stops, column).cast(pl.Float64, strict=False)
    # A stop without usable coordinates (empty, not a number, off the globe)
    # cannot be shown to be near anything.
    return pl.when(value.abs() <= limit).then(value).otherwise(None)


def _nodes(stops: pl.DataFrame) -> pl.DataFrame:
    """One row per stop: stop_id, location_type, parent_station, name_key, lat, lon."""
    nodes = pl.concat(
        [
            hierarchy_view(stops),
            stops.select(
                text_column(stops, "stop_name").alias("name"),
                _coordinate(stops, "stop_lat", 90.0).alias("lat"),
                _coordinate(stops, "stop_lon", 180.0).alias("lon"),
            ),
        ],
        how="horizontal",
    )
    # Normalise each distinct name once (≈ one per stop at most), in Python
    # because polars has no casefold; the result is joined back as a column.
    names = nodes.get_column("name").drop_nulls().unique().to_list()
    if not names:
        return nodes.with_columns(pl.lit(None, dtype=pl.String).alias("name_key")).drop("name")
    keys = {name: normalise_name(name) or None for name in names}
    return nodes.with_columns(
        pl.col("name").replace_strict(keys, default=None, return_dtype=pl.String).alias("name_key")
    ).drop("name")


def _candidate_pairs(nodes: pl.DataFrame, distance_m: float) -> pl.DataFrame:
    """Pairs (a, b, parent) with a < b by stop_id, the same name_key,
    location_type and parent, at most distance_m apart.

    A self-join on name alone would be quadratic for a common name ("Bus Stop"),
    so stops are bucketed into grid cells at least distance_m wide and only the
    3x3 neighbourhood of each cell is compared. Longitude wrap-around at ±180° is
    not handled: no metro straddles the antimeridian.
    """
    # 1 % margin so a cell is never narrower than the radius, whatever the rounding.
    cell_lat = distance_m / METRES_PER_DEGREE * 1.01
    max_abs_lat = min(float(nodes.get_column("lat").abs().max()), 89.0)  # type: ignore[arg-type]
    cell_lon = cell_lat / math.cos(math.radians(max_abs_lat))
    cells = nodes.with_columns(
        (pl.col("lat") / cell_lat).floor().cast(pl.Int64).alias("gy"),
        (pl.col("lon") / cell_lon).floor().cast(pl.Int64).alias("gx"),
    )
    neighbours = pl.DataFrame({"dy": [-1, -1, -1, 0, 0, 0, 1, 1, 1], "dx": [-1, 0, 1] * 3})
    probes = (
        cells.join(neighbours, how="cross")
        .with_columns(pl.col("gy") + pl.col("dy"), pl.col("gx") + pl.col("dx"))
        .drop("dy", "dx")
    )
    return (
        probes.join(cells, on=["name_key", "location_type", "gy", "gx"], suffix="_b")
        .filter(
            pl.col("stop_id") < pl.col("stop_id_b"),
            # null == null: two parentless stops share "no parent".
            pl.col("parent").eq_missing(pl.col("parent_b")),
            _haversine_m(pl.col("lat"), pl.col("lon"), pl.col("lat_b"), pl.col("lon_b"))
            <= distance_m,
        )
        .select(pl.col("stop_id").alias("a"), pl.col("stop_id_b").alias("b"), "parent")
    )


class _Usage:
    """Which candidate stops trips serve, and on which routes."""

    def __init__(
        self, output: dict[str, Any], used: pl.Series | None, candidates: pl.Series
    ) -> None:
        served = (
            candidates.filter(candidates.is_in(used.implode()))
            if used is not None
            else candidates[:0]
        )
        self.used: set[str] = set(served.to_list())
        # None: routes unknown (no trips.txt or no route_id), so any two served
        # stops are assumed to share one.
        self.routes: dict[str, frozenset[str]] | None = None
        stop_times, trips = output.get(STOP_TIMES), output.get(TRIPS)
        if (
            self.used
            and isinstance(stop_times, pl.DataFrame)
            and isinstance(trips, pl.DataFrame)
            and "trip_id" in stop_times.columns
            and {"trip_id", "route_id"} <= set(trips.columns)
        ):
            # Only the candidate stops' rows are joined, never all of stop_times.
            served_routes = (
                stop_times.lazy()
                .select(pl.col("stop_id").cast(pl.String), pl.col("trip_id").cast(pl.String))
                .filter(pl.col("stop_id").is_in(served.implode()))
                .unique()
                .join(
                    trips.lazy().select(
                        pl.col("trip_id").cast(pl.String), pl.col("route_id").cast(pl.String)
                    ),
                    on="trip_id",
                )
                .group_by("stop_id")
                .agg(pl.col("route_id").unique())
                .collect()
            )
            self.routes = {
                stop_id: frozenset(routes) for stop_id, routes in served_routes.iter_rows()
            }

    def distinct(self, x: str, y: str, parent: str | None) -> bool:
        """Must x and y stay apart although they look like one place?"""
        if x not in self.used or y not in self.used:
            # At most one copy is served: merging cannot move any trip.
            return False
        if parent is not None:
            # Two served children of one station: separate platforms (northbound
            # and southbound often share name and coordinates).
            return True
        if self.routes is None:
            return True
        # Two served parentless stops on a common route are that route's stops
        # on either side of the street; on disjoint routes, two listings of one.
        return not self.routes.get(x, frozenset()).isdisjoint(self.routes.get(y, frozenset()))


def _assign(pairs: pl.DataFrame, usage: _Usage, survivor_of: dict[str, str]) -> int:
    """Merge each stop into the first eligible survivor; return how many stops
    had a look-alike survivor but were kept distinct by usage.

    Star clusters, not connected components: a stop only merges into a
    survivor within distance of it (no chaining a kilometre along a street),
    and a stop never joins a cluster holding a stop it must stay distinct from.
    The loop runs over candidate pairs only (a handful per duplicate), never
    over stop_times.
    """
    members: dict[str, list[str]] = {}
    kept_distinct = 0
    rows: Iterable[tuple[str, str, str | None]] = pairs.sort("b", "a").iter_rows()
    for b, group in itertools.groupby(rows, key=lambda row: row[1]):
        blocked = False
        for a, _, parent in group:
            if a in survivor_of:  # a merged into an earlier stop; it is no survivor
                continue
            cluster = members.get(a, [a])
            if any(usage.distinct(b, member, parent) for member in cluster):
                blocked = True
                continue
            survivor_of[b] = a
            members[a] = [*cluster, b]
            break
        else:
            kept_distinct += int(blocked)
    return kept_distinct


def _rewrite_references(
    output: dict[str, Any], survivor_of: dict[str, str]
) -> tuple[dict[str, int], dict[str, pl.Series]]:
    """Point every stop reference at its survivor: one vectorised replace per
    column. Returns rows changed per "file.column", and per file a mask of the
    rows that had any reference rewritten."""
    old = pl.Series("old", list(survivor_of), dtype=pl.String)
    new = pl.Series("new", list(survivor_of.values()), dtype=pl.String)
    changed: dict[str, int] = {}
    touched: dict[str, pl.Series] = {}
    for file, column in present_references(output):
        df = output[file].with_columns(pl.col(column).cast(pl.String))
        # fill_null: an empty reference (null) is no reference; a null mask would drop the row.
        hit = df.get_column(column).is_in(old.implode()).fill_null(False)
        changed[f"{file}.{column}"] = count = int(hit.sum())
        touched[file] = touched[file] | hit if file in touched else hit
        if count:
            output[file] = df.with_columns(pl.col(column).replace(old, new))
    return changed, touched


def _tidy_rewritten(output: dict[str, Any], touched: dict[str, pl.Series]) -> tuple[int, int]:
    """Drop what the rewrite itself made redundant, and only that: transfers
    that became copies of an earlier row, pathways that became loops
    (from == to). Returns (transfers dropped, pathways dropped)."""
    dropped = []
    for file, redundant in (
        (TRANSFERS, ~pl.struct(pl.all()).is_first_distinct()),
        (PATHWAYS, pl.col("from_stop_id").eq_missing(pl.col("to_stop_id"))),
    ):
        df, mask = output.get(file), touched.get(file)
        if not isinstance(df, pl.DataFrame) or mask is None or not mask.any():
            dropped.append(0)
            continue
        if file == PATHWAYS and not {"from_stop_id", "to_stop_id"} <= set(df.columns):
            dropped.append(0)
            continue
        kept = df.filter(~(redundant & mask))
        dropped.append(df.height - kept.height)
        output[file] = kept
    return dropped[0], dropped[1]


@step(
    # Reads trips.txt (which routes serve a stop) but only writes these.
    files=sorted({file for file, _ in STOP_REFERENCES}),
    after=[update_feed_info],
    findings=[STOPS_MERGED],
)
def merge_stops(ctx: PipelineContext) -> None:
    """Merge duplicate stops (the same place listed twice) into the first by stop_id.

    Two stops are duplicates when all of these hold:

    * the same normalised stop_name (casefolded, apostrophes dropped, other
      punctuation read as a space, whitespace collapsed; stops without a name
      never merge);
    * the same location_type (empty means 0; unknown values never merge);
    * at most MERGE_DISTANCE_M metres apart (haversine; stops without
      coordinates never merge);
    * the same parent_station *after* parents are merged: stations merge first,
      then what hangs off them, then boarding areas. Children of different
      stations therefore merge only when their stations did;
    * they are not two distinct served stops. Merging must never change which
      platform a trip serves, so two stops that stop_times both use stay apart
      when they share a parent station (a station's northbound and southbound
      platforms often share name and coordinates) or, without a parent, when a
      common route serves both (the two sides of a street). Two served
      parentless stops on disjoint routes are two listings of one stop and do
      merge. Without trips.txt route_ids, any two served stops stay apart.

    Each stop merges into the first survivor (text order of stop_id) that it is
    a duplicate of and that holds no stop it must stay apart from, so every
    merged stop is within the distance of its survivor. The merged rows leave
    stops.txt and every reference is rewritten to the survivor:
    stop_times.stop_id, transfers and pathways from/to_stop_id,
    stops.parent_station, stop_areas.stop_id. Transfers that became identical
    rows are deduplicated; pathways that became loops (from == to) are dropped.

    Emits one `stops_merged` info finding with the counts.
    """
    stops = ctx.output.get(STOPS)
    if not isinstance(stops, pl.DataFrame) or "stop_id" not in stops.columns:
        log.warning("no stops.txt with a stop_id column; nothing to merge")
        return
    distance_m = float(MERGE_DISTANCE_M)
    if not math.isfinite(distance_m) or distance_m <= 0:
        raise ValueError(f"MERGE_DISTANCE_M must be a positive number of metres, not {distance_m}")

    nodes = _nodes(stops).filter(
        pl.col("name_key").is_not_null(), pl.col("lat").is_not_null(), pl.col("lon").is_not_null()
    )
    survivor_of: dict[str, str] = {}
    kept_distinct = 0
    used: pl.Series | None = None  # distinct stop_times.stop_id, read once if needed
    for location_types in _PASSES:
        batch = nodes.filter(pl.col("location_type").is_in(location_types))
        if batch.height < 2:
            continue
        # Parents as they stand after the earlier passes' merges.
        if survivor_of:
            batch = batch.with_columns(pl.col("parent_station").replace(survivor_of))
        pairs = _candidate_pairs(batch.rename({"parent_station": "parent"}), distance_m)
        if pairs.is_empty():
            continue
        if used is None:
            used = used_stop_ids(ctx.output)
        usage = _Usage(ctx.output, used, pl.concat([pairs["a"], pairs["b"]]).unique())
        kept_distinct += _assign(pairs, usage, survivor_of)

    changed: dict[str, int] = {}
    transfers_deduplicated = pathway_loops_dropped = 0
    if survivor_of:
        merged = pl.Series(list(survivor_of), dtype=pl.String)
        ctx.output[STOPS] = stops.filter(
            ~pl.col("stop_id").cast(pl.String).is_in(merged.implode()).fill_null(False)
        )
        changed, touched = _rewrite_references(ctx.output, survivor_of)
        transfers_deduplicated, pathway_loops_dropped = _tidy_rewritten(ctx.output, touched)
        for old, new in survivor_of.items():
            ctx.add_id_mapping(STOPS, "stop_id", old, new)
        for old, new in itertools.islice(survivor_of.items(), _LOGGED_MERGES):
            log.info("merged stop %s into %s", old, new)

    survivors = len(set(survivor_of.values()))
    log.info(
        "merged %d duplicate stop(s) into %d survivor(s) within %g m; %d kept distinct by usage",
        len(survivor_of),
        survivors,
        distance_m,
        kept_distinct,
    )
    ctx.emit_finding(
        STOPS_MERGED,
        severity="info",
        message=(
            f"merged {len(survivor_of)} duplicate stop(s) into {survivors} survivor(s) "
            f"within {distance_m:g} m; {kept_distinct} look-alike stop(s) kept distinct"
        ),
        context={
            "merged": str(len(survivor_of)),
            "survivors": str(survivors),
            "kept_distinct": str(kept_distinct),
            "distance_m": f"{distance_m:g}",
            "transfers_deduplicated": str(transfers_deduplicated),
            "pathway_loops_dropped": str(pathway_loops_dropped),
            **{f"rewritten:{key}": str(count) for key, count in changed.items()},
        },
    )
