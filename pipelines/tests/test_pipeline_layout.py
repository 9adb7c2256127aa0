"""The folder is a well-formed continuous-gtfs pipeline with the intended DAG."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import ModuleType

from continuous_gtfs import Step, export_reactflow, resolve_dag
from continuous_gtfs.scanner import load_feed_type, load_inputs_manifest

ORDER = [
    "init",
    "update_feed_info",
    "merge_stops",
    "remove_unused_stops",
    "validate_stop_hierarchy",
]


def test_manifest(pipeline_dir: Path) -> None:
    assert load_feed_type(pipeline_dir) == "schedule"
    assert load_inputs_manifest(pipeline_dir) == {
        "schedule": {"content_kind": "gtfs_schedule_zip", "optional": False}
    }


def test_settings_are_sane(settings: ModuleType) -> None:
    assert settings.PUBLISHER_NAME
    assert settings.PUBLISHER_URL.startswith("https://")
    assert settings.FEED_LANG
    assert 0 < settings.MERGE_DISTANCE_M < 200


def test_dag_order_and_explicit_chain(steps: dict[str, Step]) -> None:
    assert [s.name for s in resolve_dag(list(steps.values()))] == ORDER
    for before, after in itertools.pairwise(ORDER[1:]):
        assert steps[after].after == [steps[before]]
    edges = {(e["source"], e["target"]) for e in export_reactflow(list(steps.values()))["edges"]}
    assert set(itertools.pairwise(ORDER)) <= edges


def test_step_kinds(steps: dict[str, Step]) -> None:
    assert steps["init"].builtin_name == "InitScheduleOutput"
    assert steps["update_feed_info"].builtin_name == "UpdateFeedInfo"
    for name in ORDER[2:]:
        assert not steps[name].is_builtin


def test_every_step_is_described_and_declares_what_it_touches(steps: dict[str, Step]) -> None:
    for name in ORDER[1:]:
        step = steps[name]
        # A label of its own, not the one derived from the step's name.
        assert step.label, name
        assert step.label != name.replace("_", " ").title(), name
        assert "stops.txt" in step.files or name == "update_feed_info", name
    assert steps["merge_stops"].declared_findings == {"stops_merged": []}
    assert steps["remove_unused_stops"].declared_findings == {"unused_stops_removed": []}
    assert steps["validate_stop_hierarchy"].declared_findings == {
        "stop_hierarchy_violation": ["stop_id"]
    }
