"""``python -m envctl.ci canary``: the reference feeds through a real console and pipeline
(server processes from this checkout), the baseline read from deploy-record tags in a
real git repository."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from envctl.canary import CanaryError
from envctl.ci.__main__ import main
from envctl.ci.canary import Console, previous_baseline
from testkit.pipeline_variants import write_variant
from testkit.servers import Launcher

from .conftest import REPO_ROOT, EditEnv, commit_all, git, write_record

FEED = "canary/feeds/metro-2000.zip"


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    launch = Launcher(tmp_path_factory)
    yield launch
    launch.stop_all()


def console_for(launcher: Launcher, pipelines_dir: Path | None = None) -> str:
    env = {"PIPELINES_DIR": str(pipelines_dir)} if pipelines_dir else {}
    pipeline = launcher.pipeline(**env)
    console = launcher.console(pipeline.addr)
    console.wait_ready()
    return console.url


@pytest.fixture(scope="module")
def good_url(launcher: Launcher) -> str:
    return console_for(launcher)


@pytest.fixture(scope="module")
def dropping_url(launcher: Launcher, tmp_path_factory: pytest.TempPathFactory) -> str:
    variant = write_variant(tmp_path_factory.mktemp("variant"), "drop_stop_times_rows")
    return console_for(launcher, variant)


@pytest.fixture
def repo(env_repo: Path) -> Path:
    shutil.copytree(REPO_ROOT / "canary", env_repo / "canary")
    commit_all(env_repo, "reference feeds")
    return env_repo


def record(repo: Path, env: str, when: str, result: str, evidence: list[object]) -> str:
    return write_record(repo, env, when, result, evidence)


def run(repo: Path, *args: str) -> int:
    return main([*args, "--repo", str(repo)])


def test_the_first_canary_checks_the_candidate_alone_and_stores_its_outputs(
    repo: Path, good_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "canary.json"
    assert run(repo, "canary", "dev", "--url", good_url, "--report", str(report)) == 0
    evidence = json.loads(report.read_text())
    assert evidence["kind"] == "canary"
    assert evidence["ok"] is True
    statuses = {(c["name"], c["status"]) for c in evidence["checks"]}
    assert statuses == {
        ("steps", "pass"),
        ("stops", "pass"),
        ("rows", "skipped"),
        ("feed_info", "skipped"),
    }
    (out,) = evidence["outputs"]
    assert out["feed"] == "metro-2000.zip"
    assert out["status"] == "completed"
    assert out["rows"]["stop_times.txt"] == 2000
    assert out["feed_info"][0]["feed_publisher_name"] == "Metro Transit Data"
    assert "none (no succeeded release" in capsys.readouterr().out


def test_the_same_pipeline_agrees_with_the_last_succeeded_record(
    repo: Path, good_url: str, tmp_path: Path
) -> None:
    first = tmp_path / "first.json"
    assert run(repo, "canary", "dev", "--url", good_url, "--report", str(first)) == 0
    tag = record(repo, "dev", "20260610T090000Z", "succeeded", [json.loads(first.read_text())])
    # A newer failed record, and another environment's, are not baselines.
    record(repo, "dev", "20260610T093000Z", "failed", [{"kind": "canary", "outputs": []}])
    record(repo, "staging", "20260610T094000Z", "succeeded", [])
    baseline = previous_baseline(repo, "dev")
    assert baseline is not None
    assert baseline.tag == tag
    second = tmp_path / "second.json"
    assert run(repo, "canary", "dev", "--url", good_url, "--report", str(second)) == 0
    evidence = json.loads(second.read_text())
    assert {c["status"] for c in evidence["checks"]} == {"pass"}
    assert tag in evidence["baseline"]


def test_a_pipeline_that_drops_stop_times_rows_is_caught(
    repo: Path, good_url: str, dropping_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.json"
    assert run(repo, "canary", "dev", "--url", good_url, "--report", str(good)) == 0
    record(repo, "dev", "20260610T090000Z", "succeeded", [json.loads(good.read_text())])
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    assert run(repo, "canary", "dev", "--url", dropping_url, "--report", str(bad)) == 1
    captured = capsys.readouterr()
    assert "disagrees with its baseline" in captured.err
    assert (
        "stop_times.txt: 1800 rows, the baseline 2000 (-200, 10.00 % > 0 % allowed)" in captured.out
    )
    evidence = json.loads(bad.read_text())
    failed = [(c["name"], c["status"]) for c in evidence["checks"] if c["status"] == "fail"]
    # Every step succeeded and every stop still exists: only the rows tell.
    assert failed == [("rows", "fail")]


def test_a_row_tolerance_in_the_environment_file_lets_a_small_change_pass(
    repo: Path, good_url: str, dropping_url: str, tmp_path: Path, edit_env: EditEnv
) -> None:
    good = tmp_path / "good.json"
    assert run(repo, "canary", "dev", "--url", good_url, "--report", str(good)) == 0

    def tolerate(doc: Any) -> None:
        doc["verification"]["canary"]["rows"]["files"] = {"stop_times.txt": 10}

    edit_env(repo, "dev", tolerate)
    args = ["canary", "dev", "--url", dropping_url, "--baseline", str(good)]
    assert run(repo, *args) == 0


def test_a_malformed_record_is_never_the_baseline(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Records are read by envctl.records: a tag under deploy/ that is not a well-formed
    # record is skipped with a warning naming it, so it can neither pass nor fail a canary.
    git(repo, "tag", "-a", "deploy/dev/20260610T091500Z", "-m", "not json at all")
    assert previous_baseline(repo, "dev") is None
    assert "refs/tags/deploy/dev/20260610T091500Z: skipped" in capsys.readouterr().err


def test_a_missing_reference_feed_names_the_field(
    env_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(env_repo, "canary", "dev", "--url", "http://127.0.0.1:9") == 1
    assert f"verification.canary.feeds[0]: {FEED} does not exist" in capsys.readouterr().err


def test_an_unreachable_console_is_an_error_not_a_disagreement(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from testkit.net import free_port

    assert run(repo, "canary", "dev", "--url", f"http://127.0.0.1:{free_port()}") == 1
    assert "Connection refused" in capsys.readouterr().err


def test_a_console_url_must_be_https_off_loopback() -> None:
    with pytest.raises(CanaryError, match="must be https://"):
        Console("http://console.example.org", None)


def test_an_environment_without_a_canary_says_so_in_its_evidence(
    repo: Path, edit_env: EditEnv, tmp_path: Path
) -> None:
    def drop(doc: Any) -> None:
        del doc["verification"]

    edit_env(repo, "dev", drop)
    report = tmp_path / "canary.json"
    assert run(repo, "canary", "dev", "--url", "http://127.0.0.1:9", "--report", str(report)) == 0
    evidence = json.loads(report.read_text())
    assert evidence["declared"] is False
    assert evidence["checks"] == []
    assert evidence["outputs"] == []
    assert "declares no verification.canary" in evidence["detail"]


class Answers:
    """A loopback HTTP server answering POST /api/runs from a list, one per request."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.answers = answers
        self.seen = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = outer.answers[min(outer.seen, len(outer.answers) - 1)]
                outer.seen += 1
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def test_a_busy_pipeline_is_retried_then_reported_as_an_error(repo: Path) -> None:
    busy = Answers([(429, error("RESOURCE_EXHAUSTED", "not enough memory free for this run now"))])
    try:
        console = Console(busy.url, None, timeout=10, retry_wait=0)
        with pytest.raises(CanaryError, match="HTTP 429 RESOURCE_EXHAUSTED: not enough memory"):
            console.run(repo / FEED)
        assert busy.seen == 3
    finally:
        busy.close()


def test_a_feed_the_candidate_refuses_is_a_disagreement(repo: Path) -> None:
    refusing = Answers([(400, error("INVALID_ARGUMENT", "stops.txt is missing"))])
    try:
        found = Console(refusing.url, None, timeout=10, retry_wait=0).run(repo / FEED)
    finally:
        refusing.close()
    assert found.status == "refused"
    assert found.error == "HTTP 400 INVALID_ARGUMENT: stops.txt is missing"
    assert refusing.seen == 1
