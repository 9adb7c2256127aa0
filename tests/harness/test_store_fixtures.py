"""The store fixtures' Docker convention (conftest.py, tools/run-tests): no engine
skips with the reason, except on CI, where it fails."""

from __future__ import annotations

import pytest

from harness import store_fixtures


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_fixtures, "_engine_problem", lambda: "dockerd did not answer")


@pytest.mark.usefixtures("no_engine")
def test_without_docker_the_fixtures_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="dockerd did not answer"):
        store_fixtures.require_docker()


@pytest.mark.usefixtures("no_engine")
def test_without_docker_on_ci_the_fixtures_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        store_fixtures.require_docker()
