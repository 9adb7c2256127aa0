"""The deploy's metrics check (envctl.ci metrics-check) against a loopback server that
answers like Cloud Monitoring's Prometheus API, with the response bodies it sends
(tests/ci/monitoring/: a one-sample vector, an empty result, Google's 403 and
Prometheus's bad_data error)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envctl.ci.__main__ import main

from .conftest import FakeServer, Route

FIXTURES = Path(__file__).parent / "monitoring"
TOKEN = "ya29.test-access-token"
REVISIONS = {"console": "console-00042-abc", "pipeline": "pipeline-00017-xyz"}
OUTPUTS = {"latest_ready_revisions": {"sensitive": False, "type": "map", "value": REVISIONS}}


def body(name: str, value: str | None = None) -> Any:
    text = (FIXTURES / name).read_text()
    return json.loads(text.replace("VALUE", value) if value is not None else text)


def kind_of(query: str) -> str:
    if "histogram_quantile" in query:
        return "p95"
    if '"error.type"!=""' in query:
        return "error_ratio"
    return "requests"


def monitoring(
    figures: dict[str, dict[str, str | None]], empty_polls: int = 0
) -> tuple[Route, list[str]]:
    """Answers per service (by its job label) and kind; None is an empty result.
    The first ``empty_polls`` requests queries find nothing (not exported yet)."""
    asked: list[str] = []
    polls = {"left": empty_polls}

    def route(method: str, path: str, _body: Any) -> tuple[int, Any]:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["query"][0]
        asked.append(query)
        service = "console" if 'job="console"' in query else "pipeline"
        kind = kind_of(query)
        if kind == "requests" and polls["left"] > 0:
            polls["left"] -= 1
            return 200, body("empty.json")
        value = figures[service][kind]
        return 200, body("empty.json") if value is None else body("vector.json", value)

    return route, asked


HEALTHY = {
    "console": {"requests": "42", "error_ratio": "0.002", "p95": "0.18"},
    "pipeline": {"requests": "57", "error_ratio": "0", "p95": "0.0021"},
}


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    return path


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    env_repo: Path,
    outputs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    monkeypatch.setenv("MONITORING_TOKEN", TOKEN)

    def call(server: FakeServer, env: str = "staging", *extra: str) -> tuple[int, str, str]:
        code = main(
            ["metrics-check", env, "--repo", str(env_repo), "--outputs", str(outputs),
             "--api", server.url, "--wait", "0", "--poll", "0", *extra]
        )  # fmt: skip
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def test_healthy_revisions_pass_and_the_evidence_records_the_figures(
    http_server: Callable[[Route], FakeServer], run: Run, tmp_path: Path
) -> None:
    route, asked = monitoring(HEALTHY)
    server = http_server(route)
    evidence = tmp_path / "metrics.json"
    code, out, err = run(server, "staging", "--evidence", str(evidence))
    assert (code, err) == (0, "")
    # Every query is printed before it is sent, and is the one sent.
    printed = [
        line.removeprefix("query: ") for line in out.splitlines() if line.startswith("query: ")
    ]
    assert printed == asked
    assert len(asked) == 6  # requests, error ratio, p95 for each service
    for query in asked:
        assert 'namespace="staging"' in query
    assert any('instance=~"console-00042-abc-.*"' in q for q in asked)
    assert any('instance=~"pipeline-00017-xyz-.*"' in q for q in asked)
    for seen in server.seen:
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
        assert seen.path.startswith(
            "/v1/projects/gtfs-gitops-staging/location/global/prometheus/api/v1/query?"
        )
    report = json.loads(evidence.read_text())
    assert report["kind"] == "metrics"
    assert report["ok"] is True
    assert report["thresholds"] == {"error_ratio": 0.02, "p95_seconds": 1.0}
    assert report["services"]["console"]["p95_seconds"] == 0.18
    assert report["services"]["pipeline"]["revision"] == "pipeline-00017-xyz"
    assert report["services"]["pipeline"]["queries"]["p95"] in asked
    assert (
        "| console | `console-00042-abc` | 42 | 0.20% (≤ 2.00%) | 0.180 s (≤ 1.0 s) | ✅ |" in out
    )


@pytest.mark.parametrize(
    ("service", "kind", "value", "words"),
    [
        ("console", "error_ratio", "0.031", "error ratio 3.10% is over 2.00%"),
        ("pipeline", "p95", "1.75", "p95 1.750 s is over 1.0 s"),
        ("console", "error_ratio", "NaN", "no error ratio could be computed"),
        ("pipeline", "p95", None, "no interactive request to take a p95 of"),
        ("console", "requests", "4", "4 requests reached console-00042-abc in 5 min (at least 10"),
        ("pipeline", "requests", None, "0 requests reached pipeline-00017-xyz"),
    ],
)
def test_a_revision_over_a_threshold_fails_the_deploy(
    http_server: Callable[[Route], FakeServer],
    run: Run,
    tmp_path: Path,
    service: str,
    kind: str,
    value: str | None,
    words: str,
) -> None:
    figures = {s: dict(f) for s, f in HEALTHY.items()}
    figures[service][kind] = value
    route, _ = monitoring(figures)
    evidence = tmp_path / "metrics.json"
    code, out, err = run(http_server(route), "staging", "--evidence", str(evidence))
    assert code == 1
    assert err == "envctl.ci: metrics check of staging failed\n"
    saved = json.loads(evidence.read_text())  # written on failure too: the record carries it
    assert (saved["kind"], saved["environment"], saved["ok"]) == ("metrics", "staging", False)
    problems = saved["services"][service]["problems"]
    assert any(words in p for p in problems), problems
    other = "pipeline" if service == "console" else "console"
    assert saved["services"][other]["ok"] is True
    assert "**FAILED**" in out


def test_requests_are_polled_until_the_exports_arrive(
    http_server: Callable[[Route], FakeServer], run: Run
) -> None:
    route, asked = monitoring(HEALTHY, empty_polls=2)
    server = http_server(route)
    code, _out, _err = run(server, "staging", "--wait", "5")
    assert code == 0
    console_requests = [q for q in asked if 'job="console"' in q and kind_of(q) == "requests"]
    assert len(console_requests) == 3  # two empty answers, then the figure


@pytest.mark.parametrize(
    ("status", "fixture", "words"),
    [
        (
            403,
            "permission-denied.json",
            "answered 403: Permission monitoring.timeSeries.list denied",
        ),
        (400, "bad-data.json", "answered 400: invalid parameter"),
    ],
)
def test_a_refused_query_is_one_line_naming_the_reason(
    http_server: Callable[[Route], FakeServer], run: Run, status: int, fixture: str, words: str
) -> None:
    server = http_server(lambda *_: (status, body(fixture)))
    code, _out, err = run(server)
    assert code == 1
    assert err.startswith("envctl.ci: Cloud Monitoring ")
    assert words in err
    assert err.count("\n") == 1


def test_an_answer_that_is_not_a_single_sample_is_refused(
    http_server: Callable[[Route], FakeServer], run: Run
) -> None:
    two = body("vector.json", "1")
    two["data"]["result"] *= 2
    code, _out, err = run(http_server(lambda *_: (200, two)))
    assert code == 1
    assert "expected one series, got 2" in err


def test_the_token_never_travels_over_plain_http_off_loopback(run: Run) -> None:
    code, _out, err = run(FakeServer("http://monitoring.example.org"))
    assert code == 1
    assert "--api must be an https:// URL" in err


def test_no_token_is_refused_before_any_query(
    http_server: Callable[[Route], FakeServer], run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONITORING_TOKEN")
    server = http_server(monitoring(HEALTHY)[0])
    code, _out, err = run(server)
    assert code == 1
    assert "$MONITORING_TOKEN holds no access token" in err
    assert server.seen == []


def test_a_docker_environment_is_refused(
    http_server: Callable[[Route], FakeServer], run: Run
) -> None:
    code, _out, err = run(http_server(monitoring(HEALTHY)[0]), "local")
    assert code == 1
    assert "environments/local.yaml: local is not a cloud environment" in err
