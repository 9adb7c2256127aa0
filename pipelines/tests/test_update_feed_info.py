"""update_feed_info: the UpdateFeedInfo builtin fed with the pipeline's settings."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from continuous_gtfs import PipelineContext, StepResult
from continuous_gtfs.testing import gtfs_df

RunStep = Callable[..., tuple[PipelineContext, StepResult]]


def test_sets_publisher_from_settings(run_step: RunStep, settings: ModuleType) -> None:
    feed_info = gtfs_df(
        """
        feed_publisher_name,feed_publisher_url,feed_lang,feed_version
        Upstream Vendor,https://vendor.example.com,fr,42
        """
    )
    ctx, result = run_step("update_feed_info", **{"feed_info.txt": feed_info})
    assert result.status == "success"
    assert ctx.output["feed_info.txt"].to_dicts() == [
        {
            "feed_publisher_name": settings.PUBLISHER_NAME,
            "feed_publisher_url": settings.PUBLISHER_URL,
            "feed_lang": settings.FEED_LANG,
            "feed_version": "42",
        }
    ]


def test_only_overwrites_existing_columns(run_step: RunStep, settings: ModuleType) -> None:
    feed_info = gtfs_df(
        """
        feed_publisher_name,feed_version
        Upstream Vendor,42
        """
    )
    ctx, _ = run_step("update_feed_info", **{"feed_info.txt": feed_info})
    assert ctx.output["feed_info.txt"].columns == ["feed_publisher_name", "feed_version"]
    assert ctx.output["feed_info.txt"]["feed_publisher_name"].to_list() == [settings.PUBLISHER_NAME]


def test_feed_without_feed_info_is_left_alone(run_step: RunStep) -> None:
    stops = gtfs_df("stop_id\nA\n")
    ctx, result = run_step("update_feed_info", **{"stops.txt": stops})
    assert result.status == "success"
    assert set(ctx.output) == {"stops.txt"}
