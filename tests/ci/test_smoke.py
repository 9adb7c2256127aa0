"""The smoke check against a loopback HTTP server that answers like the console."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from envctl.ci.smoke import smoke

from .conftest import FakeServer, Route

PIPELINE_SHA = "a" * 40
CONSOLE_SHA = "b" * 40
TOKEN = "header.payload.signature"
DAG = {
    "nodes": [
        {"id": "load", "type": "builtin", "builtin": "LoadFeed"},
        {"id": "merge_stops", "type": "custom", "builtin": None},
    ],
    "edges": [{"source": "load", "target": "merge_stops"}],
}
STATUS = {
    "healthy": True,
    "pipeline_name": "metro_schedule",
    "step_count": 2,
    "last_run_time": None,
    "version": PIPELINE_SHA,
    "active_runs": 0,
    "framework_version": "0.1.0",
    "console_version": CONSOLE_SHA,
}
EXPECT = {"pipeline": PIPELINE_SHA, "console": CONSOLE_SHA}


def console(
    *,
    not_ready_for: int = 0,
    ready_status: int = 200,
    dag: Any = DAG,
    status: Any = STATUS,
) -> Route:
    """A fake console: 503 on /readyz for the first ``not_ready_for`` calls."""
    calls = {"readyz": 0}

    def route(method: str, path: str, body: Any) -> tuple[int, Any]:
        if path == "/readyz":
            calls["readyz"] += 1
            if calls["readyz"] <= not_ready_for:
                return 503, {"error": {"code": "pipeline_not_ready", "message": "UNAVAILABLE"}}
            if ready_status != 200:
                return ready_status, {"error": {"code": "forbidden", "message": "no"}}
            return 200, {"status": "ready", "pipeline": "SERVING"}
        if path == "/api/dag":
            return (200, dag) if isinstance(dag, dict) else dag
        if path == "/api/status":
            return 200, status
        return 404, {"error": {"code": "not_found", "message": path}}

    return route


def no_sleep() -> tuple[Callable[[], float], Callable[[float], None]]:
    """A fake clock that sleeping advances, so polling tests take no time."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return (lambda: now[0]), sleep


Start = Callable[[Route], FakeServer]


def test_a_healthy_console_passes_and_every_request_carries_the_token(
    http_server: Start,
) -> None:
    server = http_server(console())
    report = smoke(server.url, TOKEN, EXPECT)
    assert report.ok, report.to_markdown()
    assert [c.name for c in report.checks] == ["/readyz", "/api/dag", "/api/status"]
    assert {s.path for s in server.seen} == {"/readyz", "/api/dag", "/api/status"}
    assert all(s.headers["Authorization"] == f"Bearer {TOKEN}" for s in server.seen)
    assert "2 nodes, 1 edges" in report.to_markdown()


def test_readyz_is_polled_until_the_new_revision_is_ready(http_server: Start) -> None:
    server = http_server(console(not_ready_for=3))
    clock, sleep = no_sleep()
    report = smoke(server.url, None, EXPECT, ready_timeout=60, interval=5, clock=clock, sleep=sleep)
    assert report.ok
    assert "attempt 4" in report.checks[0].detail
    assert all("Authorization" not in s.headers for s in server.seen)


def test_readyz_gives_up_at_the_deadline_with_the_last_error(http_server: Start) -> None:
    server = http_server(console(not_ready_for=1000))
    clock, sleep = no_sleep()
    report = smoke(
        server.url, TOKEN, EXPECT, ready_timeout=20, interval=5, clock=clock, sleep=sleep
    )
    assert not report.ok
    assert len(report.checks) == 1  # nothing else is tried against a console that is not ready
    assert "pipeline_not_ready: UNAVAILABLE" in report.checks[0].detail
    assert sum(s.path == "/readyz" for s in server.seen) == 5


@pytest.mark.parametrize("code", [401, 403])
def test_an_auth_failure_ends_the_wait_at_once(http_server: Start, code: int) -> None:
    server = http_server(console(ready_status=code))
    report = smoke(server.url, TOKEN, EXPECT, ready_timeout=600)
    assert not report.ok
    assert "roles/run.invoker" in report.checks[0].detail
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("dag", "words"),
    [
        ({"nodes": [], "edges": []}, "no nodes"),
        ({"nodes": [{"id": "a", "type": "magic"}], "edges": []}, "unknown node types"),
        (
            {"nodes": [{"id": "a", "type": "custom"}], "edges": [{"source": "a", "target": "b"}]},
            "unknown nodes ['b']",
        ),
        ({"edges": []}, "not ReactFlow JSON"),
        (
            (503, {"error": {"code": "pipeline_unavailable", "message": "down"}}),
            "HTTP 503 pipeline_unavailable: down",
        ),
    ],
)
def test_a_wrong_dag_fails(http_server: Start, dag: Any, words: str) -> None:
    report = smoke(http_server(console(dag=dag)).url, TOKEN, EXPECT)
    assert not report.ok
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == ["/api/dag"]
    assert words in failed[0].detail


def test_an_old_revision_answering_fails(http_server: Start) -> None:
    """The deploy finished but the old pipeline still answers: that is not a success."""
    old = {**STATUS, "version": "c" * 40}
    report = smoke(http_server(console(status=old)).url, TOKEN, EXPECT)
    assert not report.ok
    assert f"pipeline runs {'c' * 12}, expected {'a' * 12}" in report.checks[-1].detail


def test_an_unhealthy_pipeline_fails(http_server: Start) -> None:
    report = smoke(http_server(console(status={**STATUS, "healthy": False})).url, TOKEN, EXPECT)
    assert not report.ok
    assert "unhealthy" in report.checks[-1].detail


def test_nothing_listening_fails_without_a_traceback() -> None:
    clock, sleep = no_sleep()
    report = smoke(
        "http://127.0.0.1:9", TOKEN, EXPECT, ready_timeout=5, interval=5, clock=clock, sleep=sleep
    )
    assert not report.ok
    assert "no answer" in report.checks[0].detail


@pytest.mark.parametrize("url", ["http://console.example.org", "ftp://127.0.0.1/"])
def test_a_token_never_travels_without_tls(url: str) -> None:
    with pytest.raises(ValueError, match="must be https"):
        smoke(url, TOKEN, EXPECT)
