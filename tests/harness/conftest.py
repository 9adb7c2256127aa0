"""Fixtures of the container harness, and container logs on failing tests."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from harness.fixtures import (  # noqa: F401 - fixtures are found by name
    LIVE,
    built_images,
    channel,
    console_url,
    pipeline_stub,
    stack,
    stacks,
)
from harness.store_fixtures import (  # noqa: F401 - fixtures are found by name
    gcs,
    gcs_emulator,
    postgres,
    postgres_server,
)
from harness.tree import REPO_ROOT

LOG_TAIL_CHARS = 20_000

# Hypothesis (schemathesis) writes .hypothesis/ in the working directory; the
# project's norecursedirs replaces pytest's defaults, so the next run would warn
# on collecting it and filterwarnings=error turns that into an error. Keep it
# under .cache/ instead.
set_hypothesis_home_dir(REPO_ROOT / ".cache" / "hypothesis")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    # Setup failures matter too: a stack that never became ready is one.
    if report.failed and report.when in ("setup", "call"):
        for name, box in list(LIVE.items()):
            logs = box.logs()
            report.sections.append((f"container logs: {name}", logs[-LOG_TAIL_CHARS:]))
