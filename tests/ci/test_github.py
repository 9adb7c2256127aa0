"""The GitHub calls against a loopback fake of the REST API."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from envctl.ci.github import GitHub, GitHubError

from .conftest import FakeServer, Route
from .fake_github import REPO, FakeGitHub

Start = Callable[[Route], FakeServer]
MERGE = "1" * 40
HEAD = "2" * 40


@pytest.fixture
def fake() -> FakeGitHub:
    return FakeGitHub()


@pytest.fixture
def github(http_server: Start, fake: FakeGitHub) -> GitHub:
    return GitHub(REPO, "t0ken", http_server(fake.route).url)


def test_a_comment_is_created_once_then_edited_in_place(github: GitHub, fake: FakeGitHub) -> None:
    fake.comments[7] = [{"id": 1, "body": "someone else's comment"}]
    assert github.upsert_comment(7, "<!-- m -->", "<!-- m -->\nfirst")[0] == "created"
    action, comment_id = github.upsert_comment(7, "<!-- m -->", "<!-- m -->\nsecond")
    assert action == "updated"
    assert [c["body"] for c in fake.comments[7]] == ["someone else's comment", "<!-- m -->\nsecond"]
    assert fake.comments[7][1]["id"] == comment_id


def test_the_marker_is_found_past_the_first_page(github: GitHub, fake: FakeGitHub) -> None:
    fake.comments[7] = [{"id": i, "body": f"chatter {i}"} for i in range(150)]
    fake.comments[7].append({"id": 999, "body": "<!-- m -->\nold"})
    assert github.upsert_comment(7, "<!-- m -->", "<!-- m -->\nnew") == ("updated", 999)


def test_issues_open_update_and_close(github: GitHub, fake: FakeGitHub) -> None:
    action, number = github.upsert_issue("<!-- d -->", "drift", "Drift", "<!-- d -->\none")
    assert action == "opened"
    assert github.upsert_issue("<!-- d -->", "drift", "Drift", "<!-- d -->\ntwo") == (
        "updated",
        number,
    )
    assert github.close_issue("<!-- d -->", "drift", "gone") == number
    assert fake.issues[0]["state"] == "closed"
    assert fake.comments[number][-1]["body"] == "gone"
    assert github.close_issue("<!-- d -->", "drift", "gone") is None


def test_the_reviewed_run_is_the_newest_successful_plan_of_the_merged_pr(
    github: GitHub, fake: FakeGitHub
) -> None:
    fake.pulls_of_commit[MERGE] = [
        {"number": 3, "merged_at": None, "merge_commit_sha": "x", "head": {"sha": "3" * 40}},
        {
            "number": 4,
            "merged_at": "2026-06-10T10:00:00Z",
            "merge_commit_sha": MERGE,
            "head": {"sha": HEAD},
        },
    ]
    base = {"workflow": "plan.yml", "head_sha": HEAD, "event": "pull_request"}
    fake.runs = [
        {**base, "id": 10, "conclusion": "success", "created_at": "2026-06-10T09:00:00Z"},
        {
            **base,
            "id": 11,
            "conclusion": "success",
            "created_at": "2026-06-10T09:30:00Z",
            "html_url": "https://github.com/run/11",
        },
        {**base, "id": 12, "conclusion": "failure", "created_at": "2026-06-10T09:45:00Z"},
    ]
    found = github.reviewed_run(MERGE)
    assert found is not None
    assert (found.run_id, found.pull_request, found.head_sha) == (11, 4, HEAD)


def test_a_direct_push_has_no_reviewed_run(github: GitHub, fake: FakeGitHub) -> None:
    assert github.reviewed_run(MERGE) is None
    fake.pulls_of_commit[MERGE] = [
        {
            "number": 4,
            "merged_at": "2026-06-10T10:00:00Z",
            "merge_commit_sha": MERGE,
            "head": {"sha": HEAD},
        }
    ]
    assert github.reviewed_run(MERGE) is None  # merged, but never planned successfully


def test_http_errors_are_one_clear_line(github: GitHub) -> None:
    with pytest.raises(GitHubError, match=r"GET /repos/other/repo: HTTP 404"):
        github.request("GET", "/repos/other/repo")


def test_the_api_is_https_or_loopback() -> None:
    with pytest.raises(GitHubError, match="must be https"):
        GitHub(REPO, "t", "http://api.example.org")
    with pytest.raises(GitHubError, match="owner/name"):
        GitHub("gitops", "t")


def test_from_env_needs_repository_and_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    with pytest.raises(GitHubError, match="GITHUB_TOKEN"):
        GitHub.from_env()
    monkeypatch.setenv("GH_TOKEN", "t")
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example.org/api/v3")
    assert GitHub.from_env().api_url == "https://ghe.example.org/api/v3"


def test_an_issue_whose_label_was_dropped_is_still_found(github: GitHub, fake: FakeGitHub) -> None:
    fake.issues.append(
        {"number": 5, "state": "open", "labels": [], "title": "t", "body": "<!-- d -->\nold"}
    )
    fake.issues.append(
        {
            "number": 6,
            "state": "open",
            "labels": ["drift"],
            "title": "PR",
            "body": "<!-- d -->",
            "pull_request": {},
        }
    )
    assert github.upsert_issue("<!-- d -->", "drift", "Drift", "<!-- d -->\nnew") == ("updated", 5)
