"""Fixtures for envctl.ci: throwaway git repositories holding a copy of environments/
(plus whatever a test adds), and loopback HTTP servers standing in for Cloud Run and
the GitHub API."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from envctl.yamlio import dump, parse

REPO_ROOT = Path(__file__).resolve().parents[2]
# A Wednesday morning outside every freeze window in the committed files.
QUIET_TIME = "2026-06-10T10:00:00Z"
# Inside prod's year-end freeze.
FROZEN_TIME = "2026-12-22T10:00:00Z"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def env_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new git repository with environments/ copied from this checkout, committed."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "environments", repo / "environments")
    (repo / "modules" / "stack").mkdir(parents=True)
    (repo / "modules" / "stack" / "main.tf").write_text("# stack\n")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "config", "user.name", "Release Bot")
    git(repo, "config", "user.email", "release-bot@example.org")
    git(repo, "config", "commit.gpgsign", "false")
    commit_all(repo, "environments as in the checkout")
    monkeypatch.setenv("ENVCTL_NOW", QUIET_TIME)
    for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    return repo


EditEnv = Callable[[Path, str, Callable[[Any], None]], None]


@pytest.fixture
def edit_env() -> EditEnv:
    """Edit environments/NAME.yaml in ``repo`` round-trip (comments kept), uncommitted."""

    def edit(repo: Path, name: str, change: Callable[[Any], None]) -> None:
        path = repo / "environments" / f"{name}.yaml"
        doc = parse(path.read_text(encoding="utf-8"), str(path))
        change(doc)
        path.write_text(dump(doc), encoding="utf-8")

    return edit


# --- loopback HTTP -------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Route = Callable[[str, str, Any], tuple[int, Any]]


@dataclass
class FakeServer:
    url: str
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
def http_server() -> Iterator[Callable[[Route], FakeServer]]:
    """Start a JSON HTTP server on 127.0.0.1 whose answers come from ``route``."""
    servers: list[ThreadingHTTPServer] = []

    def start(route: Route) -> FakeServer:
        fake = FakeServer("")

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                status, payload = route(self.command, self.path, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        fake.url = f"http://127.0.0.1:{server.server_address[1]}"
        return fake

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def write_record(
    repo: Path, env: str, when: str, result: str, evidence: list[object] | None = None
) -> str:
    """A real deploy record of ``env`` at HEAD (as ``envctl record`` writes it), made at
    ``when`` (YYYYMMDDTHHMMSSZ); each evidence item is stored as a file first. Returns
    the tag."""
    import datetime as dt
    import json

    from envctl.record import record

    moment = dt.datetime.strptime(when, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    files = []
    for i, item in enumerate(evidence or []):
        path = repo.parent / f"evidence-{env}-{when}-{i}.json"
        path.write_text(json.dumps(item), encoding="utf-8")
        files.append(path)
    return record(repo, env, result, moment, evidence=files).tag
