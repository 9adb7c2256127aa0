"""Pipeline variants for the data canary's tests: metro_schedule plus one step that
changes what the pipeline publishes, the regressions the canary must catch.

``write_variant(into, name)`` copies ``pipelines/metro_schedule`` to
``into/metro_schedule`` and adds the variant's step module, so a pipeline-server with
``PIPELINES_DIR=into`` (or an image with the module copied into
``/app/pipelines/metro_schedule``) serves it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINE = "metro_schedule"

# A last step that quietly loses every tenth stop_times row: every step still
# succeeds and every remaining stop still exists, so only the row count tells.
DROP_STOP_TIMES_ROWS = '''"""Test variant: drop every tenth stop_times row after the real steps."""

import polars as pl
from continuous_gtfs import PipelineContext, step

from .stops_hierarchy import validate_stop_hierarchy


@step(files=["stop_times.txt"], after=[validate_stop_hierarchy])
def drop_stop_times_rows(ctx: PipelineContext) -> None:
    """Keep nine stop_times rows of ten."""
    frame = ctx.output["stop_times.txt"]
    ctx.output["stop_times.txt"] = frame.filter(pl.int_range(pl.len()) % 10 != 9)
'''

# A last step that rewrites the publisher: rows are untouched, feed_info is not.
REBRAND_FEED_INFO = '''"""Test variant: publish under another name after the real steps."""

import polars as pl
from continuous_gtfs import PipelineContext, step

from .stops_hierarchy import validate_stop_hierarchy


@step(files=["feed_info.txt"], after=[validate_stop_hierarchy])
def rebrand_feed_info(ctx: PipelineContext) -> None:
    """Name the upstream vendor as the publisher."""
    frame = ctx.output["feed_info.txt"]
    ctx.output["feed_info.txt"] = frame.with_columns(feed_publisher_name=pl.lit("Vendor Inc"))
'''

VARIANTS = {"drop_stop_times_rows": DROP_STOP_TIMES_ROWS, "rebrand_feed_info": REBRAND_FEED_INFO}


def write_variant(into: Path, name: str) -> Path:
    """``into/metro_schedule`` with the variant ``name``'s step added; returns ``into``."""
    target = into / PIPELINE
    shutil.copytree(
        REPO_ROOT / "pipelines" / PIPELINE,
        target,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (target / f"{name}.py").write_text(VARIANTS[name], encoding="utf-8")
    return into
