"""Step 2: merge duplicate stops and rewrite every reference to the survivor."""

from __future__ import annotations

import bisect
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


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres. Squares are products, as polars computes
    them, so the value is bit for bit the one the earlier vectorised version of
    this step compared (a test keeps that true)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    sin_half_dphi = math.sin((phi2 - phi1) / 2)
    sin_half_dlambda = math.sin(math.radians(lon2 - lon1) / 2)
    a = sin_half_dphi * sin_half_dphi + math.cos(phi1) * math.cos(phi2) * (
        sin_half_dlambda * sin_half_dlambda
    )
    # min: rounding can push `a` a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_M * math.asin(min(math.sqrt(a), 1.0))


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


_GROUP = ("name_key", "location_type", "parent_key")
_CELL = ("cx", "cy", "cz")
_NEIGHBOURS = tuple(itertools.product((-1, 0, 1), repeat=3))


def _candidates(nodes: pl.DataFrame, distance_m: float) -> pl.DataFrame:
    """The nodes that may have a look-alike within distance_m, sorted by stop_id.

    Each stop goes into a cube of a grid over Earth-centred x, y, z (metres on
    the sphere), cubes a little wider than distance_m. The chord between two
    points is never longer than their great-circle distance, so two stops
    within distance_m lie in the same or neighbouring cubes (26 neighbours),
    across the antimeridian and at the poles alike. A stop whose neighbourhood
    holds no other stop of its name, location_type and parent can merge with
    nothing and is left out; counting per cube keeps this linear however many
    stops share one place.
    """
    side = distance_m * 1.01  # margin: a cube is never narrower than the radius
    phi, lam = pl.col("lat").radians(), pl.col("lon").radians()
    cells = nodes.with_columns(
        pl.col("parent").fill_null("").alias("parent_key"),  # "" is never a stop_id here
        ((EARTH_RADIUS_M * phi.cos() * lam.cos()) / side).floor().cast(pl.Int64).alias("cx"),
        ((EARTH_RADIUS_M * phi.cos() * lam.sin()) / side).floor().cast(pl.Int64).alias("cy"),
        ((EARTH_RADIUS_M * phi.sin()) / side).floor().cast(pl.Int64).alias("cz"),
    )
    counts = cells.group_by(*_GROUP, *_CELL).len("n")
    offsets = pl.DataFrame(
        {
            name: [offset[axis] for offset in _NEIGHBOURS]
            for axis, name in enumerate(("dx", "dy", "dz"))
        }
    )
    near = (
        counts.join(offsets, how="cross")
        .with_columns(
            (pl.col("cx") + pl.col("dx")).alias("nx"),
            (pl.col("cy") + pl.col("dy")).alias("ny"),
            (pl.col("cz") + pl.col("dz")).alias("nz"),
        )
        .join(
            counts.rename({"cx": "nx", "cy": "ny", "cz": "nz", "n": "m"}),
            on=[*_GROUP, "nx", "ny", "nz"],
        )
        .group_by(*_GROUP, *_CELL)
        .agg(pl.col("m").sum())
        .filter(pl.col("m") >= 2)
        .drop("m")
    )
    return cells.join(near, on=[*_GROUP, *_CELL], how="semi").sort("stop_id", maintain_order=True)


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

    def routes_of(self, stop_id: str) -> frozenset[str]:
        return self.routes.get(stop_id, frozenset()) if self.routes is not None else frozenset()


# A survivor as the index holds it: (stop_id, lat, lon). Lists of them are kept
# sorted by stop_id, so the first one within reach in a list is its lowest.
_Entry = tuple[str, float, float]
_CellKey = tuple[str, str, str, int, int, int]


class _Clusters:
    """The survivors of one pass, indexed by look-alike group and grid cube.

    What decides whether a served stop may join a survivor is summarised per
    cluster (survivor plus the stops merged into it): whether any member is
    served ("dirty") and the union of the served members' routes. A cluster
    without a served member is "clean" and can take any stop. Clean and dirty
    survivors live in separate lists per cube: clean survivors are never within
    the distance of one another (an unserved stop always joins a survivor in
    reach), so the lists a served stop searches stay short however many served
    look-alikes share one place.
    """

    def __init__(self, usage: _Usage, distance_m: float) -> None:
        self.usage = usage
        self.distance_m = distance_m
        self.clean: dict[_CellKey, list[_Entry]] = {}
        self.dirty: dict[_CellKey, list[_Entry]] = {}
        self.cells_of: dict[str, list[tuple[_CellKey, _Entry]]] = {}
        self.routes: dict[str, set[str]] = {}  # dirty survivor -> its served members' routes

    def first_within(
        self, lists: dict[_CellKey, list[_Entry]], key: _CellKey, lat: float, lon: float
    ) -> str | None:
        """The lowest stop_id in `lists` within reach of (lat, lon) in key's neighbourhood."""
        best: str | None = None
        *group, cx, cy, cz = key
        for dx, dy, dz in _NEIGHBOURS:
            for stop_id, lat_a, lon_a in lists.get((*group, cx + dx, cy + dy, cz + dz), ()):  # type: ignore[arg-type]
                if best is not None and stop_id >= best:
                    break
                if haversine_m(lat_a, lon_a, lat, lon) <= self.distance_m:
                    best = stop_id
                    break
        return best

    def all_within(self, key: _CellKey, lat: float, lon: float) -> list[str]:
        """Every survivor within reach of (lat, lon), lowest stop_id first."""
        *group, cx, cy, cz = key
        found = [
            stop_id
            for lists in (self.clean, self.dirty)
            for dx, dy, dz in _NEIGHBOURS
            for stop_id, lat_a, lon_a in lists.get((*group, cx + dx, cy + dy, cz + dz), ())  # type: ignore[arg-type]
            if haversine_m(lat_a, lon_a, lat, lon) <= self.distance_m
        ]
        return sorted(found)

    def conflicts(self, survivor: str, stop_id: str, parent: str | None) -> bool:
        """Must stop_id stay apart from some member of survivor's cluster?

        Only two served stops can be: merging cannot move a trip otherwise. Two
        served children of one station are separate platforms (northbound and
        southbound often share name and coordinates). Two served parentless
        stops on a common route are that route's stops on either side of the
        street; on disjoint routes, two listings of one. Without route
        information any two served stops stay apart."""
        if stop_id not in self.usage.used or survivor not in self.routes:
            return False
        if parent is not None or self.usage.routes is None:
            return True
        return not self.routes[survivor].isdisjoint(self.usage.routes_of(stop_id))

    def add(self, stop_id: str, key: _CellKey, lat: float, lon: float) -> None:
        """stop_id stays: index it as a survivor."""
        entry = (stop_id, lat, lon)
        served = stop_id in self.usage.used
        if served:
            self.routes[stop_id] = set(self.usage.routes_of(stop_id))
        bisect.insort((self.dirty if served else self.clean).setdefault(key, []), entry)
        self.cells_of.setdefault(stop_id, []).append((key, entry))

    def join(self, stop_id: str, survivor: str) -> None:
        """stop_id merged into survivor: update the cluster's summary."""
        if stop_id not in self.usage.used:
            return
        if survivor not in self.routes:  # clean until now
            self.routes[survivor] = set()
            for key, entry in self.cells_of[survivor]:
                self.clean[key].remove(entry)
                bisect.insort(self.dirty.setdefault(key, []), entry)
        self.routes[survivor] |= self.usage.routes_of(stop_id)


def _merge_pass(
    candidates: pl.DataFrame,
    usage: _Usage,
    survivor_of: dict[str, str],
    distance_m: float,
) -> int:
    """Merge each stop into the first eligible survivor; return how many stops
    had a look-alike survivor but were kept distinct by usage.

    Star clusters, not connected components: a stop only merges into a
    survivor within distance of it (no chaining a kilometre along a street),
    and a stop never joins a cluster holding a stop it must stay distinct from.
    Stops are visited in stop_id order and each looks up the survivors in its
    neighbourhood of the index, never every earlier stop of its name.
    """
    clusters = _Clusters(usage, distance_m)
    kept_distinct = 0
    rows: Iterable[tuple[str, str, str, str, str | None, float, float, int, int, int]] = (
        candidates.select("stop_id", *_GROUP, "parent", "lat", "lon", *_CELL).iter_rows()
    )
    for stop_id, same_id in itertools.groupby(rows, key=lambda row: row[0]):
        mine = [
            ((name, lt, parent_key, cx, cy, cz), parent, lat, lon)
            for _, name, lt, parent_key, parent, lat, lon, cx, cy, cz in same_id
        ]
        served = stop_id in usage.used
        survivor: str | None = None
        blocked = False
        if len(mine) == 1 and not served:
            # Nothing can object to an unserved stop: the lowest survivor in reach.
            key, _, lat, lon = mine[0]
            firsts = [
                clusters.first_within(lists, key, lat, lon)
                for lists in (clusters.clean, clusters.dirty)
            ]
            survivor = min((f for f in firsts if f is not None), default=None)
        elif len(mine) == 1 and (mine[0][1] is not None or usage.routes is None):
            # A served stop may join only a cluster with no served member.
            key, _, lat, lon = mine[0]
            survivor = clusters.first_within(clusters.clean, key, lat, lon)
            blocked = (
                survivor is None
                and clusters.first_within(clusters.dirty, key, lat, lon) is not None
            )
        else:
            # Routes decide (or a stop_id listed more than once): try each in order.
            options = sorted(
                (a, parent)
                for key, parent, lat, lon in mine
                for a in clusters.all_within(key, lat, lon)
            )
            for a, parent in options:
                if a in survivor_of:
                    continue
                if clusters.conflicts(a, stop_id, parent):
                    blocked = True
                    continue
                survivor = a
                break
        if survivor is not None:
            survivor_of[stop_id] = survivor
            clusters.join(stop_id, survivor)
            continue
        kept_distinct += int(blocked)
        if stop_id not in survivor_of:  # merged in an earlier pass (a repeated stop_id)
            for key, _, lat, lon in mine:
                clusters.add(stop_id, key, lat, lon)
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
        candidates = _candidates(batch.rename({"parent_station": "parent"}), distance_m)
        if candidates.is_empty():
            continue
        if used is None:
            used = used_stop_ids(ctx.output)
        usage = _Usage(ctx.output, used, candidates.get_column("stop_id").unique())
        kept_distinct += _merge_pass(candidates, usage, survivor_of, distance_m)

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
