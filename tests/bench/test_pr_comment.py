"""The bench's PR comment: the ratio table, posted once and then edited in place,
against a loopback server answering as GitHub's comments API does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

from bench import pr_comment, ratios
from bench.cli import REPO
from testkit.http_stub import LoopbackHttpStub

OWNER_REPO = "transit/gitops"


def _report(tag: str, dag_over_health: float, capacity: dict[str, Any] | None = None) -> dict:
    return {
        "schema": 1,
        "tag": tag,
        "commit": tag * 8,
        "created": "2026-12-01T00:00:00+00:00",
        "machine": {"cpu_model": "EPYC", "usable_cpus": 2, "load_average_1_5_15": [0.5, 1, 1]},
        "parameters": {"load": {"seconds": 20 if tag == "base" else 10}},
        "ratios": {
            "floor.get_dag_over_health": {"value": dag_over_health, "gated": True, "kind": "ratio"},
            "warm.error_rate": {"value": 0.0, "gated": True, "kind": "rate"},
            "floor.console_over_grpc": {"value": 9.0, "gated": False, "kind": "ratio"},
        },
        "capacity": capacity,
    }


def test_the_body_is_the_gated_table_with_verdicts_and_knees() -> None:
    base, current = _report("base", 1.0), _report("head", 1.4)
    current["capacity"] = {
        "plan": {"factor": 2},
        "targets": {"pipeline": {"knee_rps": 800, "knee_is_lower_bound": False}},
    }
    verdicts = ratios.judge(base["ratios"], current["ratios"], 0.25)
    text = pr_comment.body(verdicts, 0.25, current, base, "https://ci/run/1", ["a: 1 → 2"])
    assert text.startswith(pr_comment.MARKER)
    assert "| `floor.get_dag_over_health` | 1.000 | 1.400 | +40% | ❌ regressed |" in text
    assert "floor.console_over_grpc" not in text, "only gated ratios are judged"
    assert "**1 of 2 gated ratios regressed**" in text
    assert "pipeline 800/s" in text
    assert "[this run](https://ci/run/1)" in text
    assert "`a: 1 → 2`" in text


class FakeComments(BaseHTTPRequestHandler):
    comments: ClassVar[list[dict[str, Any]]] = []

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:
        assert self.path.startswith(f"/repos/{OWNER_REPO}/issues/7/comments")
        page = 1 if "page=1" in self.path else 2
        self._reply(200, self.comments if page == 1 else [])

    def do_POST(self) -> None:
        assert self.path == f"/repos/{OWNER_REPO}/issues/7/comments"
        comment = {"id": 100 + len(self.comments), "body": self._body()["body"]}
        self.comments.append(comment)
        self._reply(201, comment)

    def do_PATCH(self) -> None:
        comment_id = int(self.path.rsplit("/", 1)[1])
        comment = next(c for c in self.comments if c["id"] == comment_id)
        comment["body"] = self._body()["body"]
        self._reply(200, comment)

    def log_message(self, *_: Any) -> None:
        pass


def test_the_comment_is_created_once_then_edited_in_place(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "report.json").write_text(json.dumps(_report("base", 1.0)))
    FakeComments.comments = [{"id": 1, "body": "someone else's comment"}]
    with LoopbackHttpStub(FakeComments) as github:
        env = {
            **os.environ,
            "GITHUB_REPOSITORY": OWNER_REPO,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": f"http://{github.host}",
        }
        for value in (1.1, 1.5):
            (tmp_path / "head").mkdir(exist_ok=True)
            (tmp_path / "head" / "report.json").write_text(json.dumps(_report("head", value)))
            done = subprocess.run(
                [sys.executable, "-m", "bench", "comment", str(tmp_path / "head"),
                 "--baseline", str(tmp_path / "base"), "--pr", "7", "--run-url", "https://r"],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
    assert len(FakeComments.comments) == 2, "one bench comment beside the other one"
    ours = FakeComments.comments[1]
    assert ours["body"].startswith(pr_comment.MARKER)
    assert "1.500" in ours["body"], "the second run edited the first one's comment"
    assert "1.100" not in ours["body"]
