"""The stop steps' previous algorithms, kept as test oracles.

``reference_merge`` is merge_stops' decision (which stop merges into which,
and how many look-alikes usage kept apart) as the pair-comparing version
computed it, written as plainly as possible: every pair of stops with one
name, location_type and parent is compared (a full self-join, no grid), with
the haversine expression that version used, then each stop merges into the
first eligible survivor. Quadratic on purpose: it is the definition the
indexed step must reproduce, on feeds small enough to afford it.

``reference_kept`` is remove_unused_stops' level-by-level closure.

``random_feed`` makes small feeds full of the cases that make an index wrong:
stops exactly at the merge distance, on both sides of grid-cell borders, near
the antimeridian and the poles, duplicated names with spelling variants,
served and unserved copies on shared and disjoint routes, stations whose
merge re-parents their children, parent_station chains and cycles.

Not a test module (no ``test_`` prefix): the tests import it.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import polars as pl

EARTH_RADIUS_M = 6_371_008.8
M_PER_DEG_LAT = EARTH_RADIUS_M * math.pi / 180

_PASSES: tuple[tuple[str, ...], ...] = (("1",), ("0", "2", "3"), ("4",))


def haversine_expr(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    """The distance expression merge_stops compared pairs with, frozen here."""
    phi1, phi2 = lat1.radians(), lat2.radians()
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = (lon2 - lon1).radians() / 2
    a = half_dphi.sin() ** 2 + phi1.cos() * phi2.cos() * half_dlambda.sin() ** 2
    return 2 * EARTH_RADIUS_M * a.sqrt().clip(upper_bound=1.0).arcsin()


def _usage(tables: dict[str, pl.DataFrame], candidates: set[str]) -> tuple[set[str], Any]:
    """(served candidates, routes per served candidate or None when unknown)."""
    stop_times, trips = tables.get("stop_times.txt"), tables.get("trips.txt")
    if stop_times is None or "stop_id" not in stop_times.columns:
        return set(), None
    used = set(stop_times.get_column("stop_id").cast(pl.String).drop_nulls().to_list()) & candidates
    if not (
        used
        and trips is not None
        and "trip_id" in stop_times.columns
        and {"trip_id", "route_id"} <= set(trips.columns)
    ):
        return used, None
    route_of_trip: dict[str, set[str]] = {}
    for trip_id, route_id in trips.select("trip_id", "route_id").cast(pl.String).iter_rows():
        route_of_trip.setdefault(trip_id, set()).add(route_id)
    routes: dict[str, set[str]] = {}
    for stop_id, trip_id in stop_times.select("stop_id", "trip_id").cast(pl.String).iter_rows():
        if stop_id in used and trip_id in route_of_trip:
            routes.setdefault(stop_id, set()).update(
                r for r in route_of_trip[trip_id] if r is not None
            )
    return used, {stop: frozenset(r) for stop, r in routes.items()}


def _distinct(used: set[str], routes: Any, x: str, y: str, parent: str | None) -> bool:
    """Must x and y stay apart although they look like one place?"""
    if x not in used or y not in used:
        return False
    if parent is not None or routes is None:
        return True
    return not routes.get(x, frozenset()).isdisjoint(routes.get(y, frozenset()))


def reference_merge(
    stops_merge: ModuleType, tables: dict[str, pl.DataFrame], distance_m: float
) -> tuple[dict[str, str], int]:
    """(survivor_of, kept_distinct) by comparing every same-key pair."""
    nodes = stops_merge._nodes(tables["stops.txt"]).filter(
        pl.col("name_key").is_not_null(), pl.col("lat").is_not_null(), pl.col("lon").is_not_null()
    )
    survivor_of: dict[str, str] = {}
    kept_distinct = 0
    for location_types in _PASSES:
        batch = nodes.filter(pl.col("location_type").is_in(location_types))
        if survivor_of:
            batch = batch.with_columns(pl.col("parent_station").replace(survivor_of))
        batch = batch.rename({"parent_station": "parent"})
        pairs = (
            batch.join(batch, on=["name_key", "location_type"], suffix="_b")
            .filter(
                pl.col("stop_id") < pl.col("stop_id_b"),
                pl.col("parent").eq_missing(pl.col("parent_b")),
                haversine_expr(pl.col("lat"), pl.col("lon"), pl.col("lat_b"), pl.col("lon_b"))
                <= distance_m,
            )
            .select(pl.col("stop_id").alias("a"), pl.col("stop_id_b").alias("b"), "parent")
            .unique()
        )
        if pairs.is_empty():
            continue
        candidates = set(pairs["a"].to_list()) | set(pairs["b"].to_list())
        used, routes = _usage(tables, candidates)

        members: dict[str, list[str]] = {}
        rows = sorted(pairs.iter_rows(), key=lambda row: (row[1], row[0], row[2] or ""))
        for b, group in itertools.groupby(rows, key=lambda row: row[1]):
            blocked = False
            for a, _, parent in group:
                if a in survivor_of:
                    continue
                cluster = members.get(a, [a])
                if any(_distinct(used, routes, b, m, parent) for m in cluster):
                    blocked = True
                    continue
                survivor_of[b] = a
                members[a] = [*cluster, b]
                break
            else:
                kept_distinct += int(blocked)
    return survivor_of, kept_distinct


def reference_kept(stops: pl.DataFrame, used: Sequence[str]) -> set[str]:
    """remove_unused_stops' kept set, computed one hierarchy level per pass."""
    view = {
        row[0]: (row[1] or "0", row[2] or None)
        for row in stops.select("stop_id", "location_type", "parent_station").iter_rows()
    }
    kept = {stop for stop in used if stop in view}
    while True:
        parents = {parent for s in kept if (parent := view[s][1]) is not None} - kept
        new: set[str] = {p for p in parents if p in view}
        if not new:
            break
        kept |= new
    while True:
        attached = {
            s for s, (lt, parent) in view.items() if lt in ("2", "3", "4") and parent in kept
        } - kept
        if not attached:
            break
        kept |= attached
    return kept


# Places the random feeds are built around: (lat, lon). Montreal is the real
# feeds' city; the others are where degree arithmetic goes wrong.
MONTREAL = (45.5017, -73.5673)
EQUATOR = (0.0, 0.0)
ANTIMERIDIAN = (-16.5, 179.99992)
NEAR_POLE = (89.99985, 30.0)
POLE = (90.0, 0.0)


def _move(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point north_m / east_m away (small offsets; wraps longitude, folds over a pole)."""
    lat2 = lat + north_m / M_PER_DEG_LAT
    cos_lat = max(math.cos(math.radians(min(abs(lat), 89.999999))), 1e-9)
    lon2 = lon + east_m / (M_PER_DEG_LAT * cos_lat)
    if lat2 > 90:
        lat2, lon2 = 180 - lat2, lon2 + 180
    if lat2 < -90:
        lat2, lon2 = -180 - lat2, lon2 + 180
    lon2 = (lon2 + 180) % 360 - 180
    return lat2, lon2


def _text(value: float) -> str:
    # repr: the shortest text that reads back as the same float.
    return repr(value)


def random_feed(
    seed: int, place: tuple[float, float], stops: int = 160, distance_m: float = 25.0
) -> dict[str, pl.DataFrame]:
    """A small feed of look-alike stops around `place`; the same seed gives the same feed."""
    rng = random.Random(seed)
    names = ["Central", "central", "CENTRAL ", "Elm St", "Elm St.", "Oak", "", None]
    # Offsets that sit on the merge distance, a hair either side, and well inside/out.
    radii = [0.0, distance_m, distance_m * (1 - 1e-12), distance_m * (1 + 1e-12), 0.5 * distance_m]
    radii += [0.99 * distance_m, 1.01 * distance_m, 2 * distance_m]
    rows: list[tuple[str, str | None, str, str, str, str]] = []
    stations: list[str] = []
    platforms: list[str] = []
    anchors = [place, _move(*place, rng.uniform(-40, 40), rng.uniform(-40, 40))]
    for i in range(stops):
        anchor = rng.choice(anchors)
        if rng.random() < 0.5:
            radius, angle = rng.choice(radii), rng.uniform(0, 2 * math.pi)
        else:
            radius, angle = rng.uniform(0, 3 * distance_m), rng.uniform(0, 2 * math.pi)
        lat, lon = _move(*anchor, radius * math.cos(angle), radius * math.sin(angle))
        if rng.random() < 0.1:
            # Exactly north or east of the anchor: the old grid's worst alignment.
            lat, lon = _move(*anchor, rng.choice(radii), 0.0)
        kind = rng.random()
        stop_id = f"S{rng.randrange(10**6):06d}-{i}"
        if kind < 0.25 or not stations:
            lt, parent = "1", ""
            if rng.random() < 0.05 and stations:
                parent = rng.choice(stations)  # a station with a parent: invalid, still merged
            stations.append(stop_id)
        elif kind < 0.65:
            lt, parent = rng.choice(["0", "", "0"]), rng.choice([*stations, "", ""])
            if rng.random() < 0.05 and platforms:
                parent = rng.choice(platforms)  # platform under a platform: a chain
            platforms.append(stop_id)
        elif kind < 0.8:
            lt, parent = rng.choice(["2", "3"]), rng.choice(stations)
        elif platforms:
            lt, parent = "4", rng.choice(platforms)
        else:
            lt, parent = "9", ""
        if rng.random() < 0.02:
            parent = stop_id  # its own parent: a cycle of one
        coords = (_text(lat), _text(lon)) if rng.random() > 0.03 else ("", "")
        rows.append((stop_id, rng.choice(names), *coords, lt, parent))
    # A cycle of two, both one name at one place.
    cycle_at = (_text(place[0]), _text(place[1]))
    rows.append(("CYC-A", "Central", *cycle_at, "0", "CYC-B"))
    rows.append(("CYC-B", "Central", *cycle_at, "0", "CYC-A"))
    rng.shuffle(rows)
    stops_df = pl.DataFrame(
        rows,
        schema=dict.fromkeys(
            ("stop_id", "stop_name", "stop_lat", "stop_lon", "location_type", "parent_station"),
            pl.String,
        ),
        orient="row",
    )
    ids = [row[0] for row in rows]
    routes = ["R1", "R2", "R3"]
    trips = [(rng.choice(routes), "S", f"T{t}") for t in range(6)]
    stop_times = [
        (trip_id, stop_id, str(seq))
        for _, _, trip_id in trips
        for seq, stop_id in enumerate(rng.sample(ids, k=len(ids) // 4))
    ]
    tables = {
        "stops.txt": stops_df,
        "trips.txt": pl.DataFrame(
            trips,
            schema=dict.fromkeys(("route_id", "service_id", "trip_id"), pl.String),
            orient="row",
        ),
        "stop_times.txt": pl.DataFrame(
            stop_times,
            schema=dict.fromkeys(("trip_id", "stop_id", "stop_sequence"), pl.String),
            orient="row",
        ),
    }
    variant = seed % 3
    if variant == 1:
        del tables["trips.txt"]  # routes unknown: any two served look-alikes stay apart
    elif variant == 2:
        tables["trips.txt"] = tables["trips.txt"].drop("route_id")
    return tables
