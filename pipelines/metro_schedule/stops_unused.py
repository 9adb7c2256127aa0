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


def _closure(start: set[str], edges: dict[str, list[str]]) -> set[str]:
    """start and everything reachable from it along edges (each node once, so a
    parent cycle or an 8,000-deep chain costs one visit per stop)."""
    seen = set(start)
    todo = list(start)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _kept_stop_ids(view: pl.DataFrame, used: pl.Series) -> pl.Series:
    """Served stops, every ancestor of one (so a used platform keeps its
    station), then whatever is attached to a kept stop: entrances, nodes and
    boarding areas hanging off it, and what hangs off those."""
    kept = set(view.filter(pl.col("stop_id").is_in(used.implode())).get_column("stop_id").to_list())
    # Only stops with a parent take part: a few rows per station, not every bus stop.
    links = view.filter(
        pl.col("parent_station").is_not_null(),
        pl.col("parent_station").is_in(view.get_column("stop_id").implode()),
    )
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for stop_id, location_type, parent in links.iter_rows():
        parents.setdefault(stop_id, []).append(parent)
        if location_type in _ATTACHED:
            children.setdefault(parent, []).append(stop_id)
    kept = _closure(_closure(kept, parents), children)
    return pl.Series("stop_id", sorted(kept), dtype=pl.String)


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
