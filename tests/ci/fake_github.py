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
    next_id: int = 100

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

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
                return 200, paged(self.comments.get(number, []))
            comment = {"id": self._id(), "body": body["body"]}
            self.comments.setdefault(number, []).append(comment)
            return 201, comment
        if m := re.fullmatch(r"/issues/comments/(\d+)", path):
            for comments in self.comments.values():
                for comment in comments:
                    if comment["id"] == int(m[1]):
                        comment.update(body)
                        return 200, comment
            return 404, {"message": "Not Found"}
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
