"""Environment locks, as Atlantis has them, kept in nothing but GitHub (ADR 0023).

A pull request that changes environment E claims E with its plan comment for E: the
comment carries the hidden lock marker ``<!-- envctl-ci:lock:E -->`` beside the plan
marker. The lock of E belongs to the open pull request whose claim is oldest, ordered
by comment id (GitHub's ids only grow, so two claims made in the same second still have
an order every reader agrees on). Nothing needs cleaning up:

- merged or closed: the PR is no longer open, so its claim no longer counts;
- a PR that stops changing E: its next plan run strips the lock marker (``release``);
- a PR that changes E again later: it claims anew with a new comment, so it queues
  behind everyone who claimed E meanwhile instead of jumping back to its old place.

Only comments written by the workflow's own identity (``bot``) count, so nobody takes
or blocks a lock by typing the marker into a comment. Races: each plan run writes its
claim *before* reading the others, so of two runs racing for a free E, each sees at least
its own claim, and the one that reads second sees both; ``acquire`` reads twice, a few
seconds apart, to cover GitHub's listing lag (ADR 0023 discusses what is left).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from envctl.ci.comment import marker
from envctl.ci.github import GitHub

DEFAULT_BOT = "github-actions[bot]"
SETTLE_SECONDS = 5.0


def lock_marker(environment: str) -> str:
    return marker("lock", environment)


@dataclass(frozen=True)
class Claim:
    pull_request: int
    comment_id: int
    created_at: str
    url: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "pull_request": self.pull_request,
            "comment_id": self.comment_id,
            "created_at": self.created_at,
            "url": self.url,
        }


@dataclass(frozen=True)
class Decision:
    environment: str
    pull_request: int
    claim: Claim
    holder: Claim

    @property
    def held(self) -> bool:
        return self.holder.pull_request == self.pull_request

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "pull_request": self.pull_request,
            "held": self.held,
            "claim": self.claim.as_dict(),
            "holder": self.holder.as_dict(),
        }

    def message(self) -> str:
        if self.held:
            return f"#{self.pull_request} holds the lock of {self.environment}"
        return (
            f"{self.environment} is locked by #{self.holder.pull_request} (planned first, at "
            f"{self.holder.created_at}); #{self.pull_request} can be planned once "
            f"#{self.holder.pull_request} is merged or closed"
        )


def refused_comment(decision: Decision, commit: str, run_url: str | None) -> str:
    """The plan comment of a PR the lock turned away (still a claim: it keeps its place)."""
    env, holder = decision.environment, decision.holder
    where = f" ([run]({run_url}))" if run_url else ""
    return (
        f"{marker('plan', env)}\n{lock_marker(env)}\n"
        f"## `{env}` at `{commit[:12]}`: not planned, the environment is locked\n\n"
        f"🔒 **`{env}` is locked by #{holder.pull_request}**, which planned it first "
        f"([its plan]({holder.url}), {holder.created_at}). Two open pull requests planning "
        f"one environment would each be reviewed against a state the other changes.\n\n"
        f"This pull request is queued for `{env}`: push again or re-run the plan once "
        f"#{holder.pull_request} is merged or closed.{where}\n"
    )


def pending_comment(environment: str, commit: str) -> str:
    return (
        f"{marker('plan', environment)}\n{lock_marker(environment)}\n"
        f"## `{environment}` at `{commit[:12]}`\n\nPlanning…\n"
    )


def _is_claim(comment: dict[str, Any], environment: str, bot: str) -> bool:
    user = (comment.get("user") or {}).get("login")
    return user == bot and lock_marker(environment) in (comment.get("body") or "")


def _claim(number: int, comment: dict[str, Any]) -> Claim:
    return Claim(
        number,
        int(comment["id"]),
        str(comment.get("created_at", "")),
        str(comment.get("html_url", "")),
    )


def claims(gh: GitHub, environment: str, bot: str = DEFAULT_BOT) -> list[Claim]:
    """Every open pull request's claim of ``environment``, oldest first."""
    found = []
    for pull in gh.paginate(f"/repos/{gh.repo}/pulls", {"state": "open"}):
        number = int(pull["number"])
        comments = gh.paginate(f"/repos/{gh.repo}/issues/{number}/comments")
        mine = [c for c in comments if _is_claim(c, environment, bot)]
        if mine:
            found.append(_claim(number, min(mine, key=lambda c: int(c["id"]))))
    return sorted(found, key=lambda c: c.comment_id)


def _own_comment(gh: GitHub, number: int, environment: str, bot: str) -> dict[str, Any] | None:
    for comment in gh.paginate(f"/repos/{gh.repo}/issues/{number}/comments"):
        user = (comment.get("user") or {}).get("login")
        if user == bot and marker("plan", environment) in (comment.get("body") or ""):
            return dict(comment)
    return None


def acquire(
    gh: GitHub,
    environment: str,
    number: int,
    commit: str,
    bot: str = DEFAULT_BOT,
    settle: float = SETTLE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> Decision:
    """Claim ``environment`` for PR ``number`` (first), then decide who holds it."""
    own = _own_comment(gh, number, environment, bot)
    if own is not None and lock_marker(environment) not in (own.get("body") or ""):
        # Released earlier: claim anew, behind whoever claimed meanwhile.
        gh.request("DELETE", f"/repos/{gh.repo}/issues/comments/{own['id']}")
        own = None
    if own is None:
        own = gh.request(
            "POST",
            f"/repos/{gh.repo}/issues/{number}/comments",
            {"body": pending_comment(environment, commit)},
        )
    mine = _claim(number, own)
    found: list[Claim] = []
    for attempt in range(2):
        if attempt:
            sleep(settle)
        found = claims(gh, environment, bot)
        if found and found[0].pull_request != number:
            break  # someone older holds it; a second look cannot change that
    if not any(c.pull_request == number for c in found):
        found = sorted([*found, mine], key=lambda c: c.comment_id)  # our claim, not yet listed
    return Decision(environment, number, mine, found[0])


def release(gh: GitHub, number: int, keep: Iterable[str], bot: str = DEFAULT_BOT) -> list[str]:
    """Strip PR ``number``'s lock markers for environments it no longer changes
    (not in ``keep``); returns the environments released."""
    keep = set(keep)
    released = []
    for comment in gh.paginate(f"/repos/{gh.repo}/issues/{number}/comments"):
        if (comment.get("user") or {}).get("login") != bot:
            continue
        body = str(comment.get("body") or "")
        for env in _locked_in(body):
            if env in keep:
                continue
            body = body.replace(lock_marker(env) + "\n", "").replace(lock_marker(env), "")
            body += (
                f"\n<sub>This pull request no longer changes `{env}`; its lock is released.</sub>\n"
            )
            gh.request("PATCH", f"/repos/{gh.repo}/issues/comments/{comment['id']}", {"body": body})
            released.append(env)
    return sorted(released)


def _locked_in(body: str) -> list[str]:
    prefix, suffix = "<!-- envctl-ci:lock:", " -->"
    found = []
    start = body.find(prefix)
    while start >= 0:
        end = body.find(suffix, start)
        if end < 0:
            break
        found.append(body[start + len(prefix) : end])
        start = body.find(prefix, end)
    return found
