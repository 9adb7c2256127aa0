"""The runs routes refuse what cannot be a run before calling the pipeline,
and a wrong method on a path names every method the path has."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from testkit.servers import ConsoleServer, Launcher, StandIn, start_stand_in


@dataclass
class Over:
    console: ConsoleServer
    stand_in: StandIn


@pytest.fixture(scope="module")
def over_stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Over]:
    launcher = Launcher(tmp_path_factory)
    stand_in = start_stand_in()
    try:
        yield Over(launcher.console(f"127.0.0.1:{stand_in.port}"), stand_in)
    finally:
        launcher.stop_all()
        stand_in.stop()


def _not_found(response: httpx.Response) -> str:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "not_found"
    message: str = error["message"]
    return message


# 16,000 was RESOURCE_EXHAUSTED from the pipeline; 9,000-12,000 a 429 pipeline_busy
# through the console (the echoed id overflowed the reply's metadata).
@pytest.mark.parametrize(
    "run_id",
    [
        "a" * 16_000,
        "a" * 12_000,
        "a" * 9_000,
        "x",
        "0123456789abcdef",  # too short
        "0123456789ABCDEF0123456789ABCDEF",  # run ids are lowercase
        "0123456789abcdef0123456789abcdef0",  # one too many
        "01234567-89ab-cdef-0123-456789abcdef",  # dashed
        "%00" * 32,
    ],
)
@pytest.mark.parametrize("suffix", ["", "/output"])
def test_what_cannot_be_a_run_id_is_404_without_a_pipeline_call(
    over_stand_in: Over, run_id: str, suffix: str
) -> None:
    before = len(over_stand_in.stand_in.servicer.methods())
    with over_stand_in.console.client() as client:
        message = _not_found(client.get(f"/api/runs/{run_id}{suffix}"))
    assert len(message) < 200, "the id is not echoed"
    assert "a" * 40 not in message
    calls = over_stand_in.stand_in.servicer.methods()[before:]
    assert not [m for m in calls if m in ("GetRun", "DownloadOutput")], calls


def test_a_well_formed_id_goes_to_the_pipeline(over_stand_in: Over) -> None:
    run_id = uuid.uuid4().hex
    with over_stand_in.console.client() as client:
        response = client.get(f"/api/runs/{run_id}")
    assert response.status_code == 200, response.text
    assert response.json()["run_id"] == run_id


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/runs", "GET, POST"),
        ("PUT", "/api/runs", "GET, POST"),
        ("POST", "/api/runs/" + "0" * 32, "GET"),
        ("POST", f"/api/runs/{'0' * 32}/output", "GET"),
        ("POST", "/api/status", "GET"),
        ("DELETE", "/openapi.json", "GET, HEAD"),
    ],
)
def test_405_allow_lists_every_method_of_the_path(
    over_stand_in: Over, method: str, path: str, allowed: str
) -> None:
    with over_stand_in.console.client() as client:
        response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    assert response.json()["error"]["code"] == "method_not_allowed"
