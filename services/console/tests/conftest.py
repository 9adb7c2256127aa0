"""Fixtures for the console's tests (helpers live in testkit.servers)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from testkit.servers import CONSOLE_CAP, PIPELINE_CAP, TINY_FEED, Launcher, Stack
from testkit.zips import make_zip


@pytest.fixture
def launch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path_factory)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One pipeline and one console shared by a test module."""
    launcher = Launcher(tmp_path_factory)
    try:
        pipeline = launcher.pipeline(
            PIPELINE_MAX_UPLOAD_BYTES=str(PIPELINE_CAP),
            # One slot, so a test can hold it and see the console's 429.
            PIPELINE_MAX_CONCURRENT_RUNS="1",
        )
        console = launcher.console(pipeline.addr, CONSOLE_MAX_UPLOAD_BYTES=str(CONSOLE_CAP))
        yield Stack(pipeline, console)
    finally:
        launcher.stop_all()


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with stack.console.client() as c:
        yield c


@pytest.fixture
def tiny_feed() -> bytes:
    return make_zip(TINY_FEED)
