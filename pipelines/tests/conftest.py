"""Fixtures for the metro_schedule tests.

No ``__init__.py`` here on purpose: continuous-gtfs treats every folder under
``pipelines/`` that has one as a pipeline.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest
from continuous_gtfs import PipelineContext, Step, StepResult, execute_pipeline, scan_pipeline
from continuous_gtfs.testing import schedule_context

from testkit.scripts import load_tool

PIPELINE_DIR = Path(__file__).resolve().parents[1] / "metro_schedule"
REPO_ROOT = Path(__file__).resolve().parents[2]

RunStep = Callable[..., tuple[PipelineContext, StepResult]]


@pytest.fixture(scope="session")
def pipeline_dir() -> Path:
    return PIPELINE_DIR


@pytest.fixture(scope="session")
def steps() -> dict[str, Step]:
    """The pipeline's steps by name, as the service loads them."""
    return {s.name: s for s in scan_pipeline(PIPELINE_DIR)}


@pytest.fixture(scope="session")
def settings(steps: dict[str, Step]) -> ModuleType:
    """The pipeline package (its __init__), as scan_pipeline imported it: the
    settings the steps actually read."""
    package = steps["merge_stops"].apply.__module__.rpartition(".")[0]
    return sys.modules[package]


@pytest.fixture(scope="session")
def generate_feed() -> ModuleType:
    """tools/generate_feed.py, loaded by path as other test suites do."""
    return load_tool("generate_feed.py")


@pytest.fixture
def run_step(steps: dict[str, Step]) -> RunStep:
    """Run one step by name on the given tables through the executor, so the
    result carries its status, error and findings as a real run would."""

    def run(name: str, **tables: pl.DataFrame) -> tuple[PipelineContext, StepResult]:
        ctx = schedule_context(**tables)
        result = execute_pipeline([steps[name]], ctx, fail_fast=True)
        (step_result,) = result.steps
        return ctx, step_result

    return run
