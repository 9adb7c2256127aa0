"""The data canary's comparison (envctl.canary): each invariant, failing and passing, on
real zips; the committed reference feeds; the environment files' canary settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envctl.canary import (
    FAIL,
    PASS,
    SKIPPED,
    CanaryError,
    Check,
    FeedOutput,
    Report,
    Settings,
    StepOutcome,
    baseline_of,
    compare,
    settings,
    sha256_file,
    summarize,
)
from envctl.load import load_environment
from testkit.scripts import load_tool
from testkit.zips import make_zip

from .conftest import REPO_ROOT

STOPS = "stop_id,stop_name\nS1,One\nS2,Two\nS3,Three\n"
STOP_TIMES = "trip_id,stop_id,stop_sequence\nT1,S1,1\nT1,S2,2\nT2,S2,1\nT2,S3,2\n"
FEED_INFO = "feed_publisher_name,feed_publisher_url,feed_lang\nMetro Transit Data,https://transit.example.org/data,en\n"
ROUTES = "route_id,route_short_name\nR1,1\nR2,2\n"
OK_STEPS = (StepOutcome("init", "success"), StepOutcome("update_feed_info", "success"))
NO_TOLERANCE = Settings(("canary/feeds/x.zip",))


def output(**files: str) -> bytes:
    base = {
        "stops.txt": STOPS,
        "stop_times.txt": STOP_TIMES,
        "feed_info.txt": FEED_INFO,
        "routes.txt": ROUTES,
    }
    base.update({k.replace("__", "."): v for k, v in files.items()})
    return make_zip({k: v for k, v in base.items() if v is not None})


def summary(
    zip_bytes: bytes | None = None,
    steps: tuple[StepOutcome, ...] = OK_STEPS,
    status: str = "completed",
) -> FeedOutput:
    return summarize(
        "x.zip", "f" * 64, status, "", steps, output() if zip_bytes is None else zip_bytes
    )


def by_name(checks: list[Check], feed: str = "x.zip") -> dict[str, Check]:
    return {c.name: c for c in checks if c.feed == feed}


def test_identical_outputs_pass_every_check() -> None:
    checks = compare({"x.zip": summary()}, [summary()], NO_TOLERANCE)
    assert [(c.name, c.status) for c in checks] == [
        ("steps", PASS),
        ("stops", PASS),
        ("rows", PASS),
        ("feed_info", PASS),
    ]


def test_a_step_that_failed_or_was_skipped_fails_the_steps_check() -> None:
    steps = (
        StepOutcome("init", "success"),
        StepOutcome("merge_stops", "failed", "KeyError: stop_lat"),
        StepOutcome("remove_unused_stops", "skipped"),
    )
    check = by_name(compare(None, [summary(steps=steps, status="failed")], NO_TOLERANCE))["steps"]
    assert check.status == FAIL
    assert "merge_stops: failed (KeyError: stop_lat)" in check.differences
    assert "remove_unused_stops: skipped" in check.differences
    assert check.differences[0] == "the run failed"


def test_a_run_with_no_step_results_fails_the_steps_check() -> None:
    check = by_name(compare(None, [summary(steps=())], NO_TOLERANCE))["steps"]
    assert check.status == FAIL


def test_a_refused_feed_fails_and_leaves_nothing_else_to_compare() -> None:
    refused = summarize(
        "x.zip", "f" * 64, "refused", "HTTP 400 INVALID_ARGUMENT: no stops.txt", [], None
    )
    checks = by_name(compare({"x.zip": summary()}, [refused], NO_TOLERANCE))
    assert checks["steps"].status == FAIL
    assert "the run refused: HTTP 400" in checks["steps"].differences[0]
    assert {checks[n].status for n in ("stops", "rows", "feed_info")} == {SKIPPED}


def test_a_stop_times_stop_missing_from_stops_fails_and_is_named() -> None:
    broken = output(stops__txt="stop_id,stop_name\nS1,One\nS2,Two\n")
    check = by_name(compare(None, [summary(broken)], NO_TOLERANCE))["stops"]
    assert check.status == FAIL
    assert check.differences == ("stop_times.txt uses stop_id 'S3', which stops.txt does not have",)


def test_many_missing_stops_are_counted_and_a_few_shown() -> None:
    rows = "".join(f"T1,X{i:03d},{i}\n" for i in range(25))
    broken = output(stop_times__txt="trip_id,stop_id,stop_sequence\n" + rows)
    new = summary(broken)
    assert new.missing_stop_count == 25
    assert len(new.missing_stops) == 10
    check = by_name(compare(None, [new], NO_TOLERANCE))["stops"]
    assert check.differences[-1] == "… and 15 more"


def test_an_output_without_stop_times_fails_the_stops_check() -> None:
    check = by_name(compare(None, [summary(output(stop_times__txt=None))], NO_TOLERANCE))["stops"]
    assert check.status == FAIL
    assert check.differences == ("stop_times.txt",)


def test_dropped_rows_beyond_the_tolerance_fail_with_the_figures() -> None:
    fewer = output(stop_times__txt="trip_id,stop_id,stop_sequence\nT1,S1,1\nT1,S2,2\nT2,S2,1\n")
    check = by_name(compare({"x.zip": summary()}, [summary(fewer)], NO_TOLERANCE))["rows"]
    assert check.status == FAIL
    assert check.differences == (
        "stop_times.txt: 3 rows, the baseline 4 (-1, 25.00 % > 0 % allowed)",
    )


def test_rows_within_a_per_file_tolerance_pass_and_the_default_still_holds_elsewhere() -> None:
    fewer = output(
        stop_times__txt="trip_id,stop_id,stop_sequence\nT1,S1,1\nT1,S2,2\nT2,S2,1\n",
        routes__txt="route_id,route_short_name\nR1,1\n",
    )
    loose = Settings(("canary/feeds/x.zip",), 0.0, {"stop_times.txt": 25.0})
    check = by_name(compare({"x.zip": summary()}, [summary(fewer)], loose))["rows"]
    assert check.status == FAIL
    assert [d.split(":")[0] for d in check.differences] == ["routes.txt"]
    looser = Settings(("canary/feeds/x.zip",), 50.0, {"stop_times.txt": 25.0})
    assert by_name(compare({"x.zip": summary()}, [summary(fewer)], looser))["rows"].status == PASS


def test_a_file_that_disappears_or_appears_fails_unless_unbounded() -> None:
    changed = output(routes__txt=None, shapes__txt="shape_id\nA\n")
    check = by_name(compare({"x.zip": summary()}, [summary(changed)], NO_TOLERANCE))["rows"]
    assert sorted(d.split(":")[0] for d in check.differences) == ["routes.txt", "shapes.txt"]
    assert "missing from the output (the baseline had 2 rows)" in " ".join(check.differences)
    free = Settings(("canary/feeds/x.zip",), 0.0, {"routes.txt": 100.0, "shapes.txt": 100.0})
    assert by_name(compare({"x.zip": summary()}, [summary(changed)], free))["rows"].status == PASS


def test_a_changed_feed_info_fails_naming_the_field_and_both_values() -> None:
    rebranded = output(feed_info__txt=FEED_INFO.replace("Metro Transit Data", "Vendor Inc"))
    check = by_name(compare({"x.zip": summary()}, [summary(rebranded)], NO_TOLERANCE))["feed_info"]
    assert check.status == FAIL
    assert check.differences == (
        "row 1 feed_publisher_name: 'Vendor Inc', the baseline 'Metro Transit Data'",
    )


def test_no_baseline_checks_only_the_candidate_and_says_so() -> None:
    checks = by_name(compare(None, [summary()], NO_TOLERANCE))
    assert checks["rows"].status == SKIPPED
    assert "no earlier succeeded release" in checks["rows"].detail


def test_a_baseline_of_another_version_of_the_feed_is_not_compared() -> None:
    other = summarize("x.zip", "0" * 64, "completed", "", OK_STEPS, output(routes__txt=None))
    checks = by_name(compare({"x.zip": other}, [summary()], NO_TOLERANCE))
    assert checks["rows"].status == SKIPPED
    assert "different version of this feed" in checks["rows"].detail


def test_a_zip_that_is_not_a_zip_is_an_error_naming_the_feed() -> None:
    with pytest.raises(CanaryError, match=r"output of x\.zip: not a zip"):
        summarize("x.zip", "f" * 64, "completed", "", OK_STEPS, b"not a zip")


def test_the_report_round_trips_as_evidence_and_is_the_next_baseline() -> None:
    new = summary()
    report = Report(
        "dev", "none", "pipeline abc", NO_TOLERANCE, [new], compare(None, [new], NO_TOLERANCE)
    )
    evidence = json.loads(json.dumps(report.as_evidence()))
    assert evidence["kind"] == "canary"
    assert evidence["ok"] is True
    assert baseline_of(evidence, "record") == {"x.zip": new}
    assert "Data canary of dev: agrees with the baseline" in report.to_markdown()


def test_a_disagreeing_report_shows_what_differs_in_markdown() -> None:
    fewer = output(stop_times__txt="trip_id,stop_id,stop_sequence\nT1,S1,1\n")
    checks = compare({"x.zip": summary()}, [summary(fewer)], NO_TOLERANCE)
    report = Report("prod", "deploy/prod/x", "pipeline new", NO_TOLERANCE, [summary(fewer)], checks)
    text = report.to_markdown()
    assert not report.ok
    assert "**DISAGREES**" in text
    assert "- stop_times.txt: 1 rows, the baseline 4 (-3, 75.00 % > 0 % allowed)" in text


@pytest.mark.parametrize(
    ("evidence", "message"),
    [
        ({"kind": "smoke"}, "not canary evidence"),
        ({"kind": "canary"}, "'outputs' is missing"),
        ({"kind": "canary", "outputs": [{"feed": "x.zip"}]}, r"outputs\[0\]: field 'steps'"),
        (
            {
                "kind": "canary",
                "outputs": [
                    {
                        "feed": "x.zip",
                        "feed_sha256": "f",
                        "status": "completed",
                        "steps": [],
                        "rows": {"stops.txt": -1},
                        "feed_info": [],
                    }
                ],
            },
            "non-negative integers",
        ),
    ],
)
def test_malformed_stored_evidence_is_an_error_naming_where(evidence: object, message: str) -> None:
    with pytest.raises(CanaryError, match=message):
        baseline_of(evidence, "deploy/dev/20260610T100000Z")


# --- the committed feeds and settings --------------------------------------------------------


def test_every_environment_names_committed_reference_feeds() -> None:
    for name in ("local", "dev", "staging", "prod"):
        canary = settings(load_environment(REPO_ROOT, name))
        assert canary is not None, name
        for feed in canary.feeds:
            assert (REPO_ROOT / feed).is_file(), f"{name}: {feed}"


@pytest.mark.parametrize(
    ("name", "rows", "seed"), [("metro-2000.zip", 2000, 0), ("metro-5000-seed7.zip", 5000, 7)]
)
def test_the_reference_feeds_are_what_the_generator_makes(name: str, rows: int, seed: int) -> None:
    # So they can be regenerated (tools/generate_feed.py) rather than trusted as blobs.
    committed = (REPO_ROOT / "canary" / "feeds" / name).read_bytes()
    assert load_tool("generate_feed.py").build_feed(rows, seed=seed) == committed


def test_a_reference_feed_summarised_as_an_output_passes_the_stop_check(tmp_path: Path) -> None:
    feed = REPO_ROOT / "canary" / "feeds" / "metro-2000.zip"
    new = summarize(feed.name, sha256_file(feed), "completed", "", OK_STEPS, feed.read_bytes())
    assert new.rows["stop_times.txt"] == 2000
    assert new.missing_stop_count == 0
    assert by_name(compare(None, [new], NO_TOLERANCE), feed.name)["stops"].status == PASS
