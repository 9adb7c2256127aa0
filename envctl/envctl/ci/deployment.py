"""Mirror a deploy record to GitHub Deployments, so GitHub's UI shows what runs where.

The record (an annotated tag ``deploy/ENV/<time>`` on the deployed commit, ADR 0021) is
the truth; the Deployment is a view of it. One Deployment per record: created for the
environment at the deployed commit with the record's tag in its payload, then one status
(``success`` or ``failure``) linking the workflow run. Running it again for the same
record finds that Deployment by the tag and adds nothing (or only the missing status), so
a re-run workflow never doubles the history GitHub shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl import gitrepo
from envctl.ci.github import GitHub
from envctl.records import Record, read_records

STATES = {"succeeded": "success", "failed": "failure"}


@dataclass(frozen=True)
class Mirrored:
    deployment_id: int
    created: bool  # a new Deployment (False: the record's one already existed)
    status: str
    status_added: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "created": self.created,
            "status": self.status,
            "status_added": self.status_added,
        }


def record_commit(repo: Path, tag: str, environment: str) -> str:
    """The commit record ``tag`` points at; the tag must be ENV's record."""
    if not tag.startswith(f"deploy/{environment}/"):
        raise ValueError(
            f"{tag!r} is not a deploy record of {environment} (deploy/{environment}/…)"
        )
    try:
        return gitrepo.git(repo, "rev-parse", "--verify", f"refs/tags/{tag}^{{commit}}").strip()
    except Exception:
        raise ValueError(f"{tag}: no such tag in {repo} (run envctl record first)") from None


def record_at(repo: Path, environment: str, rev: str = "HEAD") -> Record | None:
    """ENV's newest deploy record on ``rev`` (the one this deploy just wrote), if any."""
    commit = gitrepo.git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    found = [r for r in read_records(repo, environment) if r.commit == commit]
    return found[0] if found else None  # newest first


def mirror(
    gh: GitHub, environment: str, sha: str, tag: str, result: str, run_url: str | None
) -> Mirrored:
    if result not in STATES:
        raise ValueError(f"--result {result!r}: expected succeeded or failed")
    state = STATES[result]
    existing = [
        d
        for d in gh.paginate(
            f"/repos/{gh.repo}/deployments", {"environment": environment, "sha": sha}
        )
        if isinstance(d.get("payload"), dict) and d["payload"].get("record_tag") == tag
    ]
    created = not existing
    if existing:
        deployment = min(existing, key=lambda d: int(d["id"]))
    else:
        deployment = gh.request(
            "POST",
            f"/repos/{gh.repo}/deployments",
            {
                "ref": sha,
                "environment": environment,
                "auto_merge": False,  # the commit is already on main; never merge anything
                "required_contexts": [],  # checks ran before the deploy; not again here
                "payload": {"record_tag": tag},
                "description": f"{tag} ({result})",
                "production_environment": environment == "prod",
                "transient_environment": False,
            },
        )
    number = int(deployment["id"])
    statuses = gh.paginate(f"/repos/{gh.repo}/deployments/{number}/statuses")
    # GitHub lists a deployment's statuses newest first.
    if statuses and statuses[0].get("state") == state:
        return Mirrored(number, created, state, False)
    body: dict[str, Any] = {
        "state": state,
        "description": f"{environment} {result}: {tag}"[:140],
        "auto_inactive": True,  # an older success of ENV turns inactive
    }
    if run_url:
        body["log_url"] = run_url
    gh.request("POST", f"/repos/{gh.repo}/deployments/{number}/statuses", body)
    return Mirrored(number, created, state, True)
