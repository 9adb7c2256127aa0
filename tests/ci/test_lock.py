"""Environment locks (envctl.ci.lock) against a loopback fake of GitHub's REST API: the
oldest open claim holds; merge or close releases without cleanup; a PR that stops
changing an environment releases it; forged markers and races."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from envctl.ci import lock
from envctl.ci.__main__ import main
from envctl.ci.comment import marker
from envctl.ci.github import GitHub

from .conftest import FakeServer, Route
from .fake_github import REPO, FakeGitHub

Start = Callable[[Route], FakeServer]
SHA = "a" * 40


@pytest.fixture
def fake() -> FakeGitHub:
    fake = FakeGitHub()
    for number in (11, 12, 13):
        fake.open_pull(number)
    return fake


@pytest.fixture
def github(http_server: Start, fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> GitHub:
    url = http_server(fake.route).url
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_API_URL", url)
    return GitHub(REPO, "t0ken", url)


def acquire(github: GitHub, env: str, pr: int) -> lock.Decision:
    return lock.acquire(github, env, pr, SHA, settle=0, sleep=lambda _: None)


def test_the_first_pr_to_plan_holds_and_the_second_is_refused_naming_it(
    github: GitHub, fake: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert acquire(github, "prod", 11).held
    status = main(["lock", "prod", "--pr", "12", "--commit", SHA, "--settle", "0"])
    assert status == 1
    err = capsys.readouterr().err
    assert "prod is locked by #11" in err
    assert "#12 can be planned once #11 is merged or closed" in err
    (comment,) = fake.comments[12]
    assert "🔒 **`prod` is locked by #11**" in comment["body"]
    assert marker("plan", "prod") in comment["body"]  # the plan comment, edited in place
    assert fake.comments[11][0]["html_url"] in comment["body"]  # a link to the holder's plan


def test_the_holder_plans_again_and_still_holds(github: GitHub, fake: FakeGitHub) -> None:
    first = acquire(github, "prod", 11)
    acquire(github, "prod", 12)
    again = acquire(github, "prod", 11)
    assert again.held
    assert again.claim.comment_id == first.claim.comment_id  # the claim is not renewed
    assert len(fake.comments[11]) == 1


def test_other_environments_are_independent(github: GitHub) -> None:
    assert acquire(github, "prod", 11).held
    assert acquire(github, "staging", 12).held
    assert not acquire(github, "prod", 12).held


def test_merge_or_close_releases_the_lock_with_no_cleanup(github: GitHub, fake: FakeGitHub) -> None:
    acquire(github, "prod", 11)
    assert not acquire(github, "prod", 12).held
    assert not acquire(github, "prod", 13).held
    fake.close_pull(11)  # merged or closed: GitHub lists it no more
    # The queue keeps its order: #12 claimed before #13.
    assert not acquire(github, "prod", 13).held
    assert acquire(github, "prod", 12).held


def test_a_pr_that_stops_changing_an_environment_releases_it(
    github: GitHub, fake: FakeGitHub
) -> None:
    acquire(github, "prod", 11)
    acquire(github, "staging", 11)
    assert main(["lock-release", "--pr", "11", "--keep", '["staging"]']) == 0
    assert acquire(github, "prod", 12).held
    assert not acquire(github, "staging", 12).held
    released = next(c for c in fake.comments[11] if marker("plan", "prod") in c["body"])
    assert "its lock is released" in released["body"]
    # Changing prod again later queues #11 behind #12 with a new claim.
    again = acquire(github, "prod", 11)
    assert not again.held
    assert again.holder.pull_request == 12


def test_a_marker_typed_by_a_person_is_no_claim(github: GitHub, fake: FakeGitHub) -> None:
    fake.comment(13, f"{marker('plan', 'prod')}\n{lock.lock_marker('prod')}\nmine now", "mallory")
    assert acquire(github, "prod", 11).held


def test_two_claims_in_the_same_second_are_ordered_by_comment_id(
    github: GitHub, fake: FakeGitHub
) -> None:
    # Both runs wrote their claim before either read: same created_at, ids differ.
    a = fake.comment(12, lock.pending_comment("prod", SHA))
    b = fake.comment(11, lock.pending_comment("prod", SHA))
    b["created_at"] = a["created_at"]
    assert acquire(github, "prod", 12).held
    decision = acquire(github, "prod", 11)
    assert not decision.held
    assert decision.holder.comment_id == a["id"]


def test_a_claim_hidden_by_listing_lag_is_seen_on_the_second_read(
    github: GitHub, fake: FakeGitHub
) -> None:
    # #12 claimed first, but GitHub does not list its comment yet when #11 reads.
    older = fake.comment(12, lock.pending_comment("prod", SHA))
    fake.unlisted.add(older["id"])
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        fake.unlisted.clear()  # the listing catches up

    decision = lock.acquire(github, "prod", 11, SHA, settle=3, sleep=sleep)
    assert waits == [3]
    assert not decision.held
    assert decision.holder.pull_request == 12


def test_the_plan_comment_keeps_the_claim(github: GitHub, fake: FakeGitHub) -> None:
    acquire(github, "prod", 11)
    assert main(["pr-comment", "prod", "--commit", SHA, "--pr", "11"]) == 0
    (comment,) = fake.comments[11]
    assert "Planning…" not in comment["body"]
    assert lock.lock_marker("prod") in comment["body"]
    assert not acquire(github, "prod", 12).held


def test_bad_keep_is_a_usage_error(github: GitHub, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lock-release", "--pr", "11", "--keep", '"prod"']) == 1
    assert "expected a JSON list" in capsys.readouterr().err
