"""A stateful stand-in for the slice of the GitHub REST API envctl.ci calls."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

REPO = "transit/gitops"


@dataclass
class FakeGitHub:
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    pulls_of_commit: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    # Who the token belongs to: the author of every comment the client writes.
    login: str = "github-actions[bot]"
    # Comment ids listings leave out for now: GitHub's listing lag after a write.
    unlisted: set[int] = field(default_factory=set)
    next_id: int = 100
    clock: int = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _now(self) -> str:
        self.clock += 1
        return f"2026-06-10T10:{self.clock // 60:02d}:{self.clock % 60:02d}Z"

    def comment(self, number: int, body: str, login: str | None = None) -> dict[str, Any]:
        """Add a comment as GitHub would (id, author, time, URL)."""
        cid = self._id()
        made = {
            "id": cid,
            "body": body,
            "user": {"login": login or self.login, "type": "Bot"},
            "created_at": self._now(),
            "html_url": f"https://github.com/{REPO}/pull/{number}#issuecomment-{cid}",
        }
        self.comments.setdefault(number, []).append(made)
        return made

    def open_pull(self, number: int) -> None:
        self.pulls.append({"number": number, "state": "open"})

    def close_pull(self, number: int) -> None:
        for pull in self.pulls:
            if pull["number"] == number:
                pull["state"] = "closed"

    def route(self, method: str, raw_path: str, body: Any) -> tuple[int, Any]:
        parsed = urllib.parse.urlsplit(raw_path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        path = parsed.path
        prefix = f"/repos/{REPO}"
        if not path.startswith(prefix):
            return 404, {"message": "Not Found"}
        path = path[len(prefix) :]
        page, per_page = int(query.get("page", 1)), int(query.get("per_page", 30))

        def paged(items: list[Any]) -> list[Any]:
            return items[(page - 1) * per_page : page * per_page]

        if m := re.fullmatch(r"/issues/(\d+)/comments", path):
            number = int(m[1])
            if method == "GET":
                listed = [c for c in self.comments.get(number, []) if c["id"] not in self.unlisted]
                return 200, paged(listed)
            return 201, self.comment(number, body["body"])
        if m := re.fullmatch(r"/issues/comments/(\d+)", path):
            for comments in self.comments.values():
                for comment in comments:
                    if comment["id"] == int(m[1]):
                        if method == "DELETE":
                            comments.remove(comment)
                            return 204, b""
                        comment.update(body)
                        return 200, comment
            return 404, {"message": "Not Found"}
        if path == "/deployments":
            if method == "GET":
                found = [
                    d
                    for d in self.deployments
                    if d["environment"] == query.get("environment", d["environment"])
                    and d["sha"] == query.get("sha", d["sha"])
                ]
                # GitHub lists deployments newest first.
                return 200, paged(sorted(found, key=lambda d: -d["id"]))
            if not re.fullmatch(r"[0-9a-f]{40}", body["ref"]):
                return 422, {"message": "ref must be a commit here"}
            made = {**body, "id": self._id(), "sha": body["ref"], "created_at": self._now()}
            self.deployments.append(made)
            return 201, made
        if m := re.fullmatch(r"/deployments/(\d+)/statuses", path):
            number = int(m[1])
            if not any(d["id"] == number for d in self.deployments):
                return 404, {"message": "Not Found"}
            statuses = self.statuses.setdefault(number, [])
            if method == "GET":
                return 200, paged(list(reversed(statuses)))
            if body["state"] not in {
                "error",
                "failure",
                "inactive",
                "in_progress",
                "queued",
                "pending",
                "success",
            }:
                return 422, {"message": "Validation Failed"}
            made = {**body, "id": self._id(), "created_at": self._now()}
            statuses.append(made)
            return 201, made
        if path == "/pulls":
            state = query.get("state", "open")
            return 200, paged([p for p in self.pulls if state in ("all", p["state"])])
        if path == "/issues":
            if method == "GET":
                found = [
                    i
                    for i in self.issues
                    if i["state"] == query.get("state", "open")
                    and (not query.get("labels") or query["labels"] in i["labels"])
                ]
                return 200, paged(found)
            issue = {
                "number": self._id(),
                "state": "open",
                "labels": body["labels"],
                "title": body["title"],
                "body": body["body"],
            }
            self.issues.append(issue)
            return 201, issue
        if m := re.fullmatch(r"/issues/(\d+)", path):
            for issue in self.issues:
                if issue["number"] == int(m[1]):
                    issue.update(body)
                    return 200, issue
            return 404, {"message": "Not Found"}
        if m := re.fullmatch(r"/commits/([0-9a-f]+)/pulls", path):
            return 200, self.pulls_of_commit.get(m[1], [])
        if m := re.fullmatch(r"/actions/workflows/([\w.-]+)/runs", path):
            found = [
                r
                for r in self.runs
                if r["workflow"] == m[1]
                and r["head_sha"] == query.get("head_sha")
                and r["conclusion"] == query.get("status")
                and r["event"] == query.get("event")
            ]
            return 200, {"total_count": len(found), "workflow_runs": found}
        return 404, {"message": "Not Found"}
