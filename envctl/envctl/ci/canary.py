"""The data canary in the deploy workflow: the reference feeds through the new pipeline
revision, by the console's HTTP API, compared with the last succeeded release's outputs.

Where it runs (ADR 0022): on the deploy runner, against the console's URL for the new
revisions (the ``canary`` revision tag during a gradual rollout: the console's new
revision reaches the pipeline's new, no-traffic revision through the pipeline's tag URL).
Each feed is one ``POST /api/runs`` (multipart, field ``feed``); the console answers with
the finished run, and ``GET /api/runs/{id}/output`` returns the output zip.

The baseline is the canary evidence stored in the newest deploy record of the same
environment whose result is ``succeeded`` (``refs/tags/deploy/ENV/*``, the record as JSON
in the tag message, evidence under ``verification``), so it is read from the clone with no
API call. A record is trusted only as far as its format: a malformed one is an error
naming the tag.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.canary import (
    EVIDENCE_KIND,
    CanaryError,
    FeedOutput,
    StepOutcome,
    baseline_of,
    sha256_file,
    summarize,
)
from envctl.records import read_records

USER_AGENT = "envctl-ci-canary/1"
# What a refused feed looks like: the candidate rejected a feed the baseline accepted.
REFUSED = {400, 413, 422}
BUSY = {429, 503}
RETRIES = 3


# --- the baseline from the deploy records ------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    tag: str  # deploy/ENV/<time>, or a file name for --baseline
    outputs: dict[str, FeedOutput]

    def describe(self) -> str:
        return f"canary outputs stored with {self.tag}"


def previous_baseline(repo: Path, env: str) -> Baseline | None:
    """The canary evidence of ENV's newest succeeded deploy record that has one.

    The records are read by ``envctl.records``, which skips (with a warning) any tag
    under deploy/ that is not a well-formed record, so a malformed tag never becomes
    the baseline.
    """
    for record in read_records(repo, env):
        if not record.succeeded:
            continue
        for i, item in enumerate(record.verification):
            if item.get("kind") == EVIDENCE_KIND:
                return Baseline(record.tag, baseline_of(item, f"{record.tag}: verification[{i}]"))
    return None


def baseline_file(path: Path) -> Baseline:
    """Canary evidence given as a file (``--baseline``): an earlier run's report."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CanaryError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CanaryError(f"{path}: not JSON ({exc})") from None
    return Baseline(str(path), baseline_of(data, str(path)))


# --- one feed through the console ------------------------------------------------------


def _send(request: urllib.request.Request, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 (checked)
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CanaryError(f"{request.full_url}: {reason}") from None


def _error_text(status: int, body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        return f"HTTP {status} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"


class Console:
    """The console's run API at ``url``, with a Google ID token when one is given."""

    def __init__(
        self, url: str, token: str | None, timeout: float = 300.0, retry_wait: float = 5.0
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        loopback = parts.hostname in {"127.0.0.1", "::1", "localhost"}
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise CanaryError(f"{url}: the console URL must be https:// (http:// on loopback)")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry_wait = retry_wait

    def _request(
        self, method: str, path: str, data: bytes | None = None, content_type: str = ""
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)  # noqa: S310
        request.add_header("User-Agent", USER_AGENT)
        if content_type:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        status, body = _send(request, self.timeout)
        if status in {401, 403}:
            raise CanaryError(f"{method} {path}: {_error_text(status, body)} (the ID token)")
        return status, body

    def _json(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        try:
            value = json.loads(body)
        except ValueError:
            raise CanaryError(f"{method} {path}: the answer is not JSON") from None
        if not isinstance(value, dict):
            raise CanaryError(f"{method} {path}: the answer is not a JSON object")
        return value

    def run(self, feed: Path, poll: float = 2.0) -> FeedOutput:
        """Run ``feed`` and summarise what came back."""
        digest = sha256_file(feed)
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="feed"; '
                f'filename="{feed.name}"\r\nContent-Type: application/zip\r\n\r\n'
            ).encode()
            + feed.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        for attempt in range(1, RETRIES + 1):
            status, raw = self._request(
                "POST", "/api/runs", body, f"multipart/form-data; boundary={boundary}"
            )
            # Busy (429: no memory free for a run now; 503: no instance ready): the
            # pipeline says to try again, which is not a disagreement.
            if status not in BUSY or attempt == RETRIES:
                break
            time.sleep(self.retry_wait * attempt)
        if status in REFUSED:
            return summarize(feed.name, digest, "refused", _error_text(status, raw), [], None)
        if status != 201:
            raise CanaryError(f"POST /api/runs ({feed.name}): {_error_text(status, raw)}")
        run = self._json("POST", "/api/runs", raw)
        deadline = time.monotonic() + self.timeout
        while run.get("status") == "running":
            if time.monotonic() > deadline:
                raise CanaryError(f"run {run.get('run_id')} of {feed.name} still running")
            time.sleep(poll)
            path = f"/api/runs/{run['run_id']}"
            status, raw = self._request("GET", path)
            if status != 200:
                raise CanaryError(f"GET {path}: {_error_text(status, raw)}")
            run = self._json("GET", path, raw)
        steps = [
            StepOutcome(str(s["step_name"]), str(s["status"]), str(s.get("error") or ""))
            for s in run.get("step_results") or []
        ]
        output = None
        if run.get("status") == "completed" and run.get("output_available"):
            path = f"/api/runs/{run['run_id']}/output"
            status, output = self._request("GET", path)
            if status != 200:
                raise CanaryError(f"GET {path}: {_error_text(status, output)}")
        return summarize(
            feed.name, digest, str(run.get("status")), str(run.get("error") or ""), steps, output
        )


def run_feeds(console: Console, repo: Path, feeds: Sequence[str]) -> list[FeedOutput]:
    return [console.run(repo / feed) for feed in feeds]
