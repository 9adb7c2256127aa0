"""A loose guard on bench.stops_scaling's worst shapes at 8,000 stops.

The numbers themselves are the benchmark's (`python -m bench.stops_scaling`);
this only fails when a step is back to comparing pairs: the pair-comparing
merge_stops took 105 s on same_place and 16 s on chain at this size, the
indexed one well under a second. 10 s leaves room for a loaded machine.
"""

from __future__ import annotations

import pytest

from bench import stops_scaling

BOUND_S = 10.0


@pytest.mark.parametrize(
    ("step", "shape"),
    [
        ("merge_stops", "same_place"),
        ("merge_stops", "chain"),
        ("merge_stops", "jitter"),
        ("merge_stops", "served_station"),
        ("remove_unused_stops", "served_chain"),
        ("validate_stop_hierarchy", "chain"),
        ("validate_stop_hierarchy", "cycle"),
    ],
)
def test_8000_stops_finish_well_within_the_bound(step: str, shape: str) -> None:
    seconds = stops_scaling.time_step(step, shape, 8_000)
    assert seconds < BOUND_S, f"{step} on {shape} x 8,000 took {seconds:.1f} s"


def test_the_shapes_are_what_they_say() -> None:
    same = stops_scaling.shape_tables("same_place", 100)["stops.txt"]
    assert same.filter(same["stop_id"].str.starts_with("CO")).height == 100
    chain = stops_scaling.shape_tables("chain", 100)["stops.txt"].tail(100)
    assert chain["parent_station"].to_list() == [None] + [f"CO{i}" for i in range(99)]
    served = stops_scaling.shape_tables("served_route", 10)
    assert served["stop_times.txt"]["stop_id"].tail(10).to_list() == [f"CO{i}" for i in range(10)]
