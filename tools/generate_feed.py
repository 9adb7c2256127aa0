"""Generate a valid metro GTFS feed of any size, for tests and benchmarks.

The feed is a small city (four metro lines of 20 stations, two bus routes)
whose stop_times.txt has exactly the number of rows asked for; trips repeat
through the day until it does. It carries what the ``metro_schedule`` pipeline
acts on, so a run over it exercises every step and succeeds:

* every metro station has a northbound and a southbound platform with the same
  name and coordinates, both served (merge_stops must keep them apart), and an
  entrance joined to both platforms by pathways;
* bus route B1 serves both sides of Main St: same names, 20 m apart, one route
  (kept apart), and bus stops leave location_type and parent_station empty;
* deliberate duplicates, ``MERGED_STOPS`` of them: a second listing of station
  RED03 with its own entrance (re-parented to RED03), an unused copy of
  platform RED07-P0 named by a transfer, B2's own copy of the B1 stop at
  Main St & 5th Ave (served by B2 only), and the second of the two unused
  platforms of the closed station GREY01;
* unused stops, ``REMOVED_STOPS`` of them: the closed station GREY01 with its
  entrance and (merged) platform, and three retired bus stops, one named by a
  transfer that goes with it.

With ``broken_hierarchy=True`` two stops break the parent_station rules (a
platform whose parent is a platform, a station with a parent) and survive the
earlier steps, so ``validate_stop_hierarchy`` fails with
``BROKEN_HIERARCHY_VIOLATIONS`` findings.

API (stable: the pipeline, server, console and bench tests import it)::

    build_feed(stop_times_rows, *, seed=0, broken_hierarchy=False) -> bytes
    write_feed(path, stop_times_rows, *, seed=0, broken_hierarchy=False) -> Path
    MERGED_STOPS, REMOVED_STOPS, BROKEN_HIERARCHY_VIOLATIONS  # what the pipeline reports
    MIN_FULL_ROWS  # below this many rows some patterns get no trip (more stops unused)

``seed`` moves stations by up to 50 m and shifts timetables; the structure and
the counts above do not depend on it. The same arguments give the same bytes.

From a checkout, either put the repository root on ``sys.path`` and
``from tools.generate_feed import build_feed``, or load this file with
``importlib.util.spec_from_file_location``. Command line::

    python tools/generate_feed.py --rows 1000000 --out /tmp/feed.zip [--seed 0] [--broken-hierarchy]

stop_times.txt is generated and written in chunks of trips, so memory is
bounded by one chunk plus the trip table (one row per ~17 stop_times); 1,000,000
rows take about two seconds.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import polars as pl

#: Stops merge_stops merges in a generated feed (when rows >= MIN_FULL_ROWS).
MERGED_STOPS = 4
#: Stops remove_unused_stops removes in a generated feed (when rows >= MIN_FULL_ROWS).
REMOVED_STOPS = 6
#: Findings validate_stop_hierarchy reports for broken_hierarchy=True.
BROKEN_HIERARCHY_VIOLATIONS = 2

# City centre the network is laid out around.
_CENTRE = (45.5017, -73.5673)
_M_PER_DEG_LAT = 111_195.0
_LINES = (("RED", "Red"), ("BLUE", "Blue"), ("GREEN", "Green"), ("ORANGE", "Orange"))
_STATIONS_PER_LINE = 20
_STATION_SPACING_M = 800.0
_B1_STOPS = 12
_BUS_SPACING_M = 300.0
# Main St's two sides: far enough to be two stops, close enough to look like one.
_STREET_WIDTH_M = 20.0
_B2_STREETS = ("Oak St", "Pine St", "Elm St", "Birch St", None, "Cedar St", "Maple St", "Ash St")
#: stop_times rows in one trip over every pattern (each route, each direction).
#: From this many rows on every stop meant to be served is served, and
#: MERGED_STOPS / REMOVED_STOPS hold; fewer rows still make a valid feed.
MIN_FULL_ROWS = 2 * (len(_LINES) * _STATIONS_PER_LINE + _B1_STOPS + len(_B2_STREETS))
_SECONDS_PER_STOP = 120
_DWELL_S = 30
_FIRST_DEPARTURE_S = 5 * 3600
_SERVICE_SPAN_S = 19 * 3600
_SERVICES = ("WEEKDAY", "WEEKEND")
# Trips generated per stop_times chunk (~20 rows each): bounds the memory of a
# huge feed without making small feeds pay for many tiny writes.
_TRIPS_PER_CHUNK = 25_000


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class _Map:
    """Metres east/north of the centre → (lat, lon) text, 6 decimals (~0.1 m)."""

    def __init__(self) -> None:
        self.m_per_deg_lon = _M_PER_DEG_LAT * math.cos(math.radians(_CENTRE[0]))

    def at(self, east_m: float, north_m: float) -> tuple[str, str]:
        lat = _CENTRE[0] + north_m / _M_PER_DEG_LAT
        lon = _CENTRE[1] + east_m / self.m_per_deg_lon
        return f"{lat:.6f}", f"{lon:.6f}"


_STOP_COLUMNS = ("stop_id", "stop_name", "stop_lat", "stop_lon", "location_type", "parent_station")


class _Network:
    """The small tables (stops, routes, patterns, transfers, pathways), built
    row by row: a few hundred rows whatever the feed size."""

    def __init__(self, seed: int, broken_hierarchy: bool) -> None:
        rng = random.Random(seed)  # noqa: S311 - test data, not a secret
        self.map = _Map()
        self.stops: list[tuple[str, str, str, str, str, str]] = []
        self.routes: list[tuple[str, str, str, str]] = []
        # (route_id, direction_id, headsign, [stop_id, ...]) in generation order.
        self.patterns: list[tuple[str, int, str, list[str]]] = []
        self.transfers: list[tuple[str, str, str, str]] = []
        self.pathways: list[tuple[str, str, str, str, str]] = []
        self._metro(rng)
        self._buses()
        self._extras()
        if broken_hierarchy:
            self._break_hierarchy()

    def stop(self, stop_id: str, name: str, at: tuple[str, str], lt: str, parent: str) -> None:
        self.stops.append((stop_id, name, at[0], at[1], lt, parent))

    def _station(self, code: str, name: str, east: float, north: float) -> list[str]:
        """A station, two platforms with its name and place, an entrance, pathways."""
        at = self.map.at(east, north)
        self.stop(code, name, at, "1", "")
        platforms = [f"{code}-P0", f"{code}-P1"]
        for platform in platforms:
            self.stop(platform, name, at, "0", code)
        entrance = f"{code}-E1"
        self.stop(entrance, f"{name} Entrance", self.map.at(east + 30, north + 30), "2", code)
        for platform in platforms:
            self.pathways.append((f"{entrance}>{platform}", entrance, platform, "1", "1"))
        return platforms

    def _metro(self, rng: random.Random) -> None:
        for index, (code, colour) in enumerate(_LINES):
            self.routes.append((code, colour, f"{colour} Line", "1"))
            # Lines radiate from the centre at different angles; the offset keeps
            # their middle stations from sitting on one another.
            angle = math.pi * index / len(_LINES)
            offset = 120.0 * (index + 1)
            per_direction: list[list[str]] = [[], []]
            for i in range(_STATIONS_PER_LINE):
                along = (i - _STATIONS_PER_LINE / 2) * _STATION_SPACING_M
                east = along * math.cos(angle) - offset * math.sin(angle) + rng.uniform(-50, 50)
                north = along * math.sin(angle) + offset * math.cos(angle) + rng.uniform(-50, 50)
                p0, p1 = self._station(f"{code}{i:02d}", f"{colour} {i:02d}", east, north)
                per_direction[0].append(p0)
                per_direction[1].append(p1)
            last = _STATIONS_PER_LINE - 1
            self.patterns.append((code, 0, f"{colour} {last:02d}", per_direction[0]))
            self.patterns.append((code, 1, f"{colour} 00", per_direction[1][::-1]))

    def _buses(self) -> None:
        # B1 runs east along Main St, 2 km south of the centre; direction 0 stops
        # on the north side (A), direction 1 on the south side (B).
        north = -2000.0
        self.routes.append(("B1", "1", "Main St", "3"))
        sides: list[list[str]] = [[], []]
        for k in range(1, _B1_STOPS + 1):
            name = f"Main St & {_ordinal(k)} Ave"
            east = k * _BUS_SPACING_M
            for side, (suffix, dy) in enumerate(
                (("A", _STREET_WIDTH_M / 2), ("B", -_STREET_WIDTH_M / 2))
            ):
                stop_id = f"B1-{k:02d}{suffix}"
                self.stop(stop_id, name, self.map.at(east, north + dy), "", "")
                sides[side].append(stop_id)
        self.patterns.append(("B1", 0, f"Main St & {_ordinal(_B1_STOPS)} Ave", sides[0]))
        self.patterns.append(("B1", 1, "Main St & 1st Ave", sides[1][::-1]))

        # B2 runs north along 5th Ave and crosses Main St, where the upstream
        # data lists its own copy of B1's stop, 3 m away and spelled differently.
        self.routes.append(("B2", "2", "5th Ave", "3"))
        fifth = 5 * _BUS_SPACING_M
        stops: list[str] = []
        for j, street in enumerate(_B2_STREETS):
            stop_id = f"B2-{j + 1:02d}"
            if street is None:
                at = self.map.at(fifth, north + _STREET_WIDTH_M / 2 + 3)
                self.stop(stop_id, "Main St. & 5th Ave.", at, "", "")
            else:
                at = self.map.at(fifth + 10, north + (j - 4) * _BUS_SPACING_M)
                self.stop(stop_id, f"5th Ave & {street}", at, "", "")
            stops.append(stop_id)
        self.patterns.append(("B2", 0, f"5th Ave & {_B2_STREETS[-1]}", stops))
        self.patterns.append(("B2", 1, f"5th Ave & {_B2_STREETS[0]}", stops[::-1]))

    def _extras(self) -> None:
        station = {row[0]: row for row in self.stops}
        # A second listing of RED03, 3 m off, with an entrance of its own.
        red03 = station["RED03"]
        lat = f"{float(red03[2]) + 3 / _M_PER_DEG_LAT:.6f}"
        self.stop("RED03X", red03[1], (lat, red03[3]), "1", "")
        self.stop("RED03X-E1", f"{red03[1]} North Entrance", (lat, red03[3]), "2", "RED03X")
        # An unused copy of RED07's first platform, named by a transfer.
        p0 = station["RED07-P0"]
        self.stop("RED07-P0X", p0[1], (p0[2], p0[3]), "0", "RED07")
        self.transfers.append(("RED07-P0X", "BLUE07-P0", "2", "180"))
        self.transfers.append(("RED10-P0", "RED10-P1", "2", "120"))
        # GREY01: a closed station, nothing calls there any more.
        self._station("GREY01", "Grey 01", 5000.0, 5000.0)
        # Retired bus stops; one still named by a transfer.
        for n in range(1, 4):
            self.stop(f"OLD{n:02d}", f"Retired Stop {n}", self.map.at(-3000.0, n * 400.0), "", "")
        self.transfers.append(("OLD01", "B1-01A", "0", ""))

    def _break_hierarchy(self) -> None:
        rows = {row[0]: i for i, row in enumerate(self.stops)}
        for stop_id, parent in (("RED01-P0", "RED02-P0"), ("BLUE04", "BLUE05")):
            row = self.stops[rows[stop_id]]
            self.stops[rows[stop_id]] = (*row[:5], parent)


def _frame(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> pl.DataFrame:
    # "" becomes null so an empty field is written empty, not as a quoted "".
    cells = [tuple(cell or None for cell in row) for row in rows]
    return pl.DataFrame(cells, schema=dict.fromkeys(columns, pl.String), orient="row")


def _trips(patterns: pl.DataFrame, rows: int) -> pl.DataFrame:
    """One row per trip: trip number, pattern, length, start time. Trips cycle
    through the patterns; the last one is cut so the lengths sum to `rows`."""
    lengths = patterns.get_column("length")
    cycles = rows // int(lengths.sum()) + 1
    trips = (
        pl.DataFrame({"trip": pl.int_range(0, cycles * patterns.height, eager=True)})
        .with_columns((pl.col("trip") % patterns.height).alias("pattern"))
        .join(patterns.select("pattern", "length"), on="pattern", maintain_order="left")
        .with_columns((pl.col("length").cum_sum() - pl.col("length")).alias("offset"))
        .filter(pl.col("offset") < rows)
        .with_columns(pl.min_horizontal("length", rows - pl.col("offset")).alias("length"))
    )
    if trips.height > 1 and trips.get_column("length")[-1] == 1:
        # A trip needs two stops: borrow one from the trip before.
        lengths_fixed = trips.get_column("length").to_list()
        lengths_fixed[-2:] = [lengths_fixed[-2] - 1, 2]
        trips = trips.with_columns(pl.Series("length", lengths_fixed)).with_columns(
            (pl.col("length").cum_sum() - pl.col("length")).alias("offset")
        )
    per_pattern = max(1, trips.height // patterns.height)
    headway = max(1, _SERVICE_SPAN_S // per_pattern)
    return trips.with_columns(
        (_FIRST_DEPARTURE_S + (pl.col("trip") // patterns.height) * headway).alias("start"),
        pl.format("T{}", pl.col("trip").cast(pl.String).str.zfill(7)).alias("trip_id"),
    )


def _clock(seconds: pl.Expr) -> pl.Expr:
    """Seconds after midnight → GTFS HH:MM:SS (hours may pass 24)."""
    return pl.format(
        "{}:{}:{}",
        (seconds // 3600).cast(pl.String).str.zfill(2),
        (seconds % 3600 // 60).cast(pl.String).str.zfill(2),
        (seconds % 60).cast(pl.String).str.zfill(2),
    )


def _stop_times_chunks(trips: pl.DataFrame, pattern_stops: pl.DataFrame) -> Iterator[pl.DataFrame]:
    for chunk in trips.iter_slices(_TRIPS_PER_CHUNK):
        yield (
            chunk.select("trip_id", "pattern", "start", pl.int_ranges(0, "length").alias("seq"))
            .explode("seq")
            .join(pattern_stops, on=["pattern", "seq"], maintain_order="left")
            .select(
                "trip_id",
                _clock(pl.col("start") + pl.col("seq") * _SECONDS_PER_STOP).alias("arrival_time"),
                _clock(pl.col("start") + pl.col("seq") * _SECONDS_PER_STOP + _DWELL_S).alias(
                    "departure_time"
                ),
                "stop_id",
                (pl.col("seq") + 1).cast(pl.String).alias("stop_sequence"),
            )
        )


def _write(target: IO[bytes] | Path, rows: int, seed: int, broken_hierarchy: bool) -> None:
    if rows < 2:
        raise ValueError(f"stop_times_rows must be at least 2 (one trip of two stops), not {rows}")
    net = _Network(seed, broken_hierarchy)
    patterns = pl.DataFrame(
        {
            "pattern": range(len(net.patterns)),
            "route_id": [p[0] for p in net.patterns],
            "direction_id": [str(p[1]) for p in net.patterns],
            "trip_headsign": [p[2] for p in net.patterns],
            "length": [len(p[3]) for p in net.patterns],
        }
    )
    pattern_stops = pl.DataFrame(
        [(i, seq, stop_id) for i, p in enumerate(net.patterns) for seq, stop_id in enumerate(p[3])],
        schema={"pattern": pl.Int64, "seq": pl.Int64, "stop_id": pl.String},
        orient="row",
    )
    trips = _trips(patterns, rows)
    # The seed shifts the whole timetable by up to ten minutes.
    shift = random.Random(seed).randrange(600)  # noqa: S311 - test data, not a secret
    trips = trips.with_columns(pl.col("start") + shift)

    tables: dict[str, pl.DataFrame] = {
        "agency.txt": _frame(
            ("agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang"),
            [("METRO", "Metro Transit", "https://metro.example.org", "America/Toronto", "en")],
        ),
        "routes.txt": _frame(
            ("route_id", "route_short_name", "route_long_name", "route_type"),
            net.routes,
        ).select(pl.lit("METRO").alias("agency_id"), pl.all()),
        "trips.txt": trips.join(patterns, on="pattern", maintain_order="left").select(
            "route_id",
            pl.when(pl.col("trip") // patterns.height % 4 == 3)
            .then(pl.lit(_SERVICES[1]))
            .otherwise(pl.lit(_SERVICES[0]))
            .alias("service_id"),
            "trip_id",
            "trip_headsign",
            "direction_id",
        ),
        "stops.txt": _frame(_STOP_COLUMNS, net.stops),
        "calendar.txt": _frame(
            (
                "service_id",
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
                "start_date",
                "end_date",
            ),
            [
                (_SERVICES[0], "1", "1", "1", "1", "1", "0", "0", "20250101", "20261231"),
                (_SERVICES[1], "0", "0", "0", "0", "0", "1", "1", "20250101", "20261231"),
            ],
        ),
        "transfers.txt": _frame(
            ("from_stop_id", "to_stop_id", "transfer_type", "min_transfer_time"), net.transfers
        ),
        "pathways.txt": _frame(
            ("pathway_id", "from_stop_id", "to_stop_id", "pathway_mode", "is_bidirectional"),
            net.pathways,
        ),
        "feed_info.txt": _frame(
            ("feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_version"),
            [("Upstream Vendor", "https://vendor.example.com", "fr", f"gen-{seed}-{rows}")],
        ),
    }
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, frame in tables.items():
            with zf.open(name, "w") as out:
                frame.write_csv(out)
        # force_zip64: the size is not known up front and may pass 2 GiB.
        with zf.open("stop_times.txt", "w", force_zip64=True) as out:
            for i, chunk in enumerate(_stop_times_chunks(trips, pattern_stops)):
                chunk.write_csv(out, include_header=i == 0)


def build_feed(stop_times_rows: int, *, seed: int = 0, broken_hierarchy: bool = False) -> bytes:
    """A valid GTFS zip whose stop_times.txt has exactly `stop_times_rows` rows."""
    buffer = io.BytesIO()
    _write(buffer, stop_times_rows, seed, broken_hierarchy)
    return buffer.getvalue()


def write_feed(
    path: str | Path, stop_times_rows: int, *, seed: int = 0, broken_hierarchy: bool = False
) -> Path:
    """Like build_feed, written straight to `path` (never held in memory whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, stop_times_rows, seed, broken_hierarchy)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, required=True, help="stop_times.txt rows")
    parser.add_argument("--out", type=Path, required=True, help="zip file to write")
    parser.add_argument("--seed", type=int, default=0, help="moves stations, shifts times")
    parser.add_argument(
        "--broken-hierarchy",
        action="store_true",
        help="add stops that fail validate_stop_hierarchy",
    )
    args = parser.parse_args(argv)
    try:
        path = write_feed(
            args.out, args.rows, seed=args.seed, broken_hierarchy=args.broken_hierarchy
        )
    except (ValueError, OSError) as exc:
        print(f"generate_feed: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size:,} bytes, {args.rows:,} stop_times rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
