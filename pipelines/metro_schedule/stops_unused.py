"""Step 3: remove stops that no trip serves, with what only they held up."""

from __future__ import annotations

import logging

import polars as pl
from continuous_gtfs import PipelineContext, step

from ._stops import (
    BOARDING_AREA,
    ENTRANCE_EXIT,
    GENERIC_NODE,
    KNOWN_LOCATION_TYPES,
    STOP_REFERENCES,
    STOP_TIMES,
    STOPS,
    hierarchy_view,
    present_references,
    used_stop_ids,
)
from .stops_merge import merge_stops

log = logging.getLogger(__name__)

#: Finding code: one info summary per run with the counts.
UNUSED_STOPS_REMOVED = "unused_stops_removed"

# What hangs off a kept stop and stays with it although no trip names it:
# entrances/exits and generic nodes of a kept station, boarding areas of a kept
# platform.
_ATTACHED = (ENTRANCE_EXIT, GENERIC_NODE, BOARDING_AREA)


def _kept_stop_ids(view: pl.DataFrame, used: pl.Series) -> pl.Series:
    """Served stops, every ancestor of one (so a used platform keeps its
    station), then whatever is attached to a kept stop. Each loop adds one
    hierarchy level per pass (at most three in GTFS) and stops when nothing
    new comes in, so a malformed parent cycle cannot make it spin."""
    kept = view.filter(pl.col("stop_id").is_in(used.implode())).get_column("stop_id").unique()
    while True:
        parents = view.filter(
            pl.col("stop_id").is_in(kept.implode()),
            pl.col("parent_station").is_not_null(),
            ~pl.col("parent_station").is_in(kept.implode()),
        ).get_column("parent_station")
        existing = view.filter(pl.col("stop_id").is_in(parents.implode())).get_column("stop_id")
        if existing.is_empty():
            break
        kept = pl.concat([kept, existing]).unique()
    while True:
        attached = view.filter(
            pl.col("location_type").is_in(_ATTACHED),
            pl.col("parent_station").is_in(kept.implode()),
            ~pl.col("stop_id").is_in(kept.implode()),
        ).get_column("stop_id")
        if attached.is_empty():
            break
        kept = pl.concat([kept, attached]).unique()
    return kept


@step(
    files=sorted({file for file, _ in STOP_REFERENCES if file != STOP_TIMES}),
    after=[merge_stops],
    findings=[UNUSED_STOPS_REMOVED],
)
def remove_unused_stops(ctx: PipelineContext) -> None:
    """Remove stops no stop_time uses, keeping the stations and station parts served stops need.

    A stop stays when stop_times.txt uses it, when it is the parent (or
    grandparent) of a stop that stays (so a station with a used platform stays),
    or when it is an entrance/exit or generic node of a station that stays, or a
    boarding area of a platform that stays. Everything else goes: unused
    platforms and stops, and a station none of whose platforms is used together
    with its entrances and nodes. A boarding area follows its platform, not the
    station, so nothing kept is left pointing at a removed parent.

    Rows of transfers.txt, pathways.txt and stop_areas.txt that name a removed
    stop are dropped as well. A feed without stop_times.txt is left as it is:
    with no trips to judge by, "unused" would mean every stop.

    Emits one `unused_stops_removed` info finding with the counts.
    """
    stops = ctx.output.get(STOPS)
    if not isinstance(stops, pl.DataFrame) or "stop_id" not in stops.columns:
        log.warning("no stops.txt with a stop_id column; nothing to remove")
        return
    used = used_stop_ids(ctx.output)
    if used is None:
        log.warning("no stop_times.txt: every stop would count as unused; leaving stops.txt as is")
        return

    view = hierarchy_view(stops)
    kept = _kept_stop_ids(view, used)
    is_kept = view.get_column("stop_id").is_in(kept.implode()).fill_null(False)
    removed = view.filter(~is_kept)
    ctx.output[STOPS] = stops.filter(is_kept)

    removed_ids = removed.get_column("stop_id").unique()
    dropped: dict[str, int] = {}
    for file, column in present_references(ctx.output):
        # stop_times cannot name a removed stop (removed means unused), and the
        # parent of every kept stop is kept.
        if file in (STOP_TIMES, STOPS) or removed_ids.is_empty():
            continue
        df = ctx.output[file]
        # fill_null: an empty reference (a transfer between routes, say) names no
        # stop and stays; a null in the filter mask would drop it.
        names_removed = pl.col(column).cast(pl.String).is_in(removed_ids.implode())
        remaining = df.filter(~names_removed.fill_null(False))
        dropped[file] = dropped.get(file, 0) + df.height - remaining.height
        ctx.output[file] = remaining

    by_type = {
        location_type: removed.filter(pl.col("location_type") == location_type).height
        for location_type in KNOWN_LOCATION_TYPES
    }
    log.info(
        "removed %d unused stop(s) of %d; rows dropped with them: %s",
        removed.height,
        view.height,
        dropped,
    )
    ctx.emit_finding(
        UNUSED_STOPS_REMOVED,
        severity="info",
        message=f"removed {removed.height} unused stop(s) of {view.height}",
        context={
            "removed": str(removed.height),
            "kept": str(view.height - removed.height),
            **{f"removed_location_type_{lt}": str(n) for lt, n in by_type.items()},
            "removed_location_type_unknown": str(removed.height - sum(by_type.values())),
            **{f"dropped:{file}": str(n) for file, n in dropped.items()},
        },
    )
