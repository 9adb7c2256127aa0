"""The few GitHub REST calls the workflows make, on the standard library.

Comments and issues are found again by a hidden marker in their body, so reruns edit
instead of piling up. The base URL comes from ``$GITHUB_API_URL`` (GitHub Enterprise,
and a loopback server in the tests); the token from ``$GITHUB_TOKEN`` or ``$GH_TOKEN``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

DEFAULT_API = "https://api.github.com"


class GitHubError(RuntimeError):
    pass


@dataclass(frozen=True)
class ReviewedRun:
    """The plan.yml run that planned the pull request a commit came from."""

    run_id: int
    pull_request: int
    head_sha: str
    url: str


class GitHub:
    def __init__(self, repo: str, token: str, api_url: str = DEFAULT_API) -> None:
        parsed = urllib.parse.urlsplit(api_url)
        loopback = parsed.hostname in {"127.0.0.1", "::1", "localhost"}
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            raise GitHubError(f"{api_url}: the GitHub API URL must be https://")
        if repo.count("/") != 1:
            raise GitHubError(f"{repo!r} is not owner/name")
        self.repo = repo
        self.token = token
        self.api_url = api_url.rstrip("/")

    @classmethod
    def from_env(cls) -> GitHub:
        repo = os.environ.get("GITHUB_REPOSITORY", "")
        token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or ""
        if not repo or not token:
            raise GitHubError("GITHUB_REPOSITORY and GITHUB_TOKEN (or GH_TOKEN) must be set")
        return cls(repo, token, os.environ.get("GITHUB_API_URL") or DEFAULT_API)

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        url = f"{self.api_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (scheme checked)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", "envctl-ci")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
                raw = reply.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise GitHubError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise GitHubError(f"{method} {path}: {exc.reason}") from None
        return json.loads(raw) if raw else None

    def paginate(
        self, path: str, query: dict[str, Any] | None = None, key: str | None = None
    ) -> list[Any]:
        """Every item of a list endpoint (``key`` names the list inside an object reply)."""
        items: list[Any] = []
        page = 1
        while True:
            reply = self.request(
                "GET", path, query={**(query or {}), "per_page": 100, "page": page}
            )
            batch = reply.get(key, []) if key else reply
            items.extend(batch)
            if len(batch) < 100:
                return items
            page += 1

    # --- comments -----------------------------------------------------------------

    def upsert_comment(self, number: int, marker: str, body: str) -> tuple[str, int]:
        """Edit the comment on issue/PR ``number`` that carries ``marker``, or add one."""
        for comment in self.paginate(f"/repos/{self.repo}/issues/{number}/comments"):
            if marker in (comment.get("body") or ""):
                self.request(
                    "PATCH", f"/repos/{self.repo}/issues/comments/{comment['id']}", {"body": body}
                )
                return "updated", int(comment["id"])
        created = self.request(
            "POST", f"/repos/{self.repo}/issues/{number}/comments", {"body": body}
        )
        return "created", int(created["id"])

    # --- issues ---------------------------------------------------------------------

    def find_issue(self, marker: str, label: str) -> dict[str, Any] | None:
        """The open issue whose body carries ``marker`` (looked for under ``label`` first).

        GitHub drops labels a token may not set; the unlabelled search afterwards keeps
        such an issue from being opened again on every run.
        """
        for query in ({"state": "open", "labels": label}, {"state": "open"}):
            for issue in self.paginate(f"/repos/{self.repo}/issues", query):
                if "pull_request" not in issue and marker in (issue.get("body") or ""):
                    return dict(issue)
        return None

    def upsert_issue(self, marker: str, label: str, title: str, body: str) -> tuple[str, int]:
        found = self.find_issue(marker, label)
        if found is not None:
            number = int(found["number"])
            self.request(
                "PATCH", f"/repos/{self.repo}/issues/{number}", {"title": title, "body": body}
            )
            return "updated", number
        created = self.request(
            "POST", f"/repos/{self.repo}/issues", {"title": title, "body": body, "labels": [label]}
        )
        return "opened", int(created["number"])

    def close_issue(self, marker: str, label: str, comment: str) -> int | None:
        found = self.find_issue(marker, label)
        if found is None:
            return None
        number = int(found["number"])
        self.request("POST", f"/repos/{self.repo}/issues/{number}/comments", {"body": comment})
        self.request(
            "PATCH",
            f"/repos/{self.repo}/issues/{number}",
            {"state": "closed", "state_reason": "completed"},
        )
        return number

    # --- the reviewed plan ------------------------------------------------------------

    def reviewed_run(self, sha: str, workflow: str = "plan.yml") -> ReviewedRun | None:
        """The newest successful ``workflow`` run for the pull request merged as ``sha``.

        None when ``sha`` came from no merged pull request (a direct push) or the PR's
        head commit was never planned successfully.
        """
        pulls = self.request("GET", f"/repos/{self.repo}/commits/{sha}/pulls")
        merged = [p for p in pulls if p.get("merged_at")]
        exact = [p for p in merged if p.get("merge_commit_sha") == sha]
        chosen = (exact or merged or [None])[0]
        if chosen is None:
            return None
        head_sha = str(chosen["head"]["sha"])
        runs = self.request(
            "GET",
            f"/repos/{self.repo}/actions/workflows/{workflow}/runs",
            query={"head_sha": head_sha, "status": "success", "event": "pull_request"},
        ).get("workflow_runs", [])
        if not runs:
            return None
        newest = max(runs, key=lambda r: (str(r.get("created_at", "")), int(r["id"])))
        return ReviewedRun(
            int(newest["id"]), int(chosen["number"]), head_sha, str(newest.get("html_url", ""))
        )
