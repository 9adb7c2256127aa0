"""Drift: what ``tofu plan -detailed-exitcode`` would change in an environment that
nobody changed in git, as one GitHub issue per environment.

A plan can also show changes that git did make but no deploy has applied yet: a merge
whose deploy is waiting (prod's reviewers), still running, or failed. Those are
*pending*, not drift. :func:`pending` decides it from the deploy record: the plan's
changes are drift only when the newest record of the environment says ``succeeded``
for exactly what the file says at HEAD, with the same ``modules/``. Otherwise the
report says "pending" and why, and the issue is left as it is (a pending deploy hides
whether anything else drifted, so it neither opens nor closes one).

Exit code 0 means no drift, 2 means the plan has changes, 1 means the plan failed (then
issues are left alone: a failed check says nothing about drift). Known noise (attributes
Google sets or rewrites by itself) is listed in a YAML file and dropped, each entry with
the reason it is harmless:

    ignore:
      - address: 'module.services["*"].google_cloud_run_v2_service.this'  # * is a wildcard
        attributes: [client, client_version]   # dotted prefixes; omit for the whole resource
        reason: set by gcloud and the console; changes nothing that runs
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from envctl import gitrepo
from envctl.ci.changed import SHARED_PREFIXES
from envctl.ci.comment import marker
from envctl.ci.github import GitHub
from envctl.ci.plan import SYMBOLS, action_of, changed_paths
from envctl.clock import rfc3339
from envctl.history import Ledger, short

LABEL = "drift"
NO_DRIFT, PLAN_FAILED, DRIFTED = 0, 1, 2


class NoiseError(ValueError):
    pass


@dataclass(frozen=True)
class Noise:
    address: str
    attributes: tuple[str, ...]
    reason: str

    def matches_address(self, address: str) -> bool:
        # Only "*" is special: addresses are full of [ and ], which fnmatch would read
        # as character classes (module.services["console"] must match literally).
        pattern = ".*".join(re.escape(part) for part in self.address.split("*"))
        return re.fullmatch(pattern, address) is not None

    def covers(self, attribute: str) -> bool:
        if not self.attributes:
            return True
        return any(
            attribute == a or attribute.startswith((f"{a}.", f"{a}[")) for a in self.attributes
        )


def load_noise(path: Path | None) -> list[Noise]:
    if path is None or not path.exists():
        return []
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8")) or {}
    except YAMLError as exc:
        raise NoiseError(f"{path}: not YAML ({exc})") from None
    entries = data.get("ignore") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise NoiseError(f"{path}: ignore: must be a list of {{address, attributes, reason}}")
    noise = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
            raise NoiseError(f"{path}: ignore[{i}].address: must be a string pattern")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            # An ignore without a reason is how real drift gets hidden for good.
            raise NoiseError(f"{path}: ignore[{i}].reason: say why this is harmless")
        attributes = entry.get("attributes") or []
        if not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes):
            raise NoiseError(f"{path}: ignore[{i}].attributes: must be a list of strings")
        noise.append(Noise(entry["address"], tuple(attributes), reason))
    return noise


@dataclass(frozen=True)
class Drifted:
    address: str
    action: str
    attributes: tuple[str, ...]


@dataclass
class DriftReport:
    environment: str
    drifted: list[Drifted] = field(default_factory=list)
    ignored: list[tuple[str, str, str]] = field(default_factory=list)  # address, attr, reason
    pending: str | None = None  # why the plan's changes may be a deploy not yet applied

    @property
    def has_drift(self) -> bool:
        return bool(self.drifted) and self.pending is None

    @property
    def is_pending(self) -> bool:
        return bool(self.drifted) and self.pending is not None

    def pending_text(self) -> str:
        return (
            f"pending in {self.environment}: {self.pending}; the plan's "
            f"{len(self.drifted)} change(s) are what git says and no deploy applied yet, "
            "not drift (the drift issue is left as it is)"
        )

    def title(self) -> str:
        return f"Drift: {self.environment} differs from environments/{self.environment}.yaml"

    def body(self, run_url: str | None = None) -> str:
        lines = [
            marker("drift", self.environment),
            f"`tofu plan` for **{self.environment}** wants to change "
            f"{len(self.drifted)} resource(s) that git did not change: someone or something "
            "changed them outside this repository.",
            "",
            "| action | resource | attributes |",
            "| --- | --- | --- |",
        ]
        for d in self.drifted:
            attrs = ", ".join(f"`{a}`" for a in d.attributes[:10]) or "(whole resource)"
            lines.append(f"| `{SYMBOLS.get(d.action, '?')}` {d.action} | `{d.address}` | {attrs} |")
        if self.ignored:
            lines += ["", f"Ignored as known noise: {len(self.ignored)} attribute change(s)."]
        lines += [
            "",
            "To fix: put the intended value into environments/"
            f"{self.environment}.yaml (or the module) through a PR, or let the next deploy "
            "restore what git says. This issue closes itself when drift is gone.",
        ]
        if run_url:
            lines += ["", f"Found by [this run]({run_url})."]
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "drift": self.has_drift,
            "pending": self.pending if self.is_pending else None,
            "resources": [
                {"address": d.address, "action": d.action, "attributes": list(d.attributes)}
                for d in self.drifted
            ],
            "ignored": [{"address": a, "attribute": t, "reason": r} for a, t, r in self.ignored],
        }


def pending(repo_root: Path, environment: str) -> str | None:
    """Why ``environment`` may not run what HEAD says yet (None: its last deploy did)."""
    ledger = Ledger(repo_root, environment)
    current = ledger.current
    if not ledger.records:
        return f"{environment} has no deploy record yet"
    last = ledger.records[0]
    when = rfc3339(last.time)
    if not last.succeeded:
        return f"the last deploy ({short(last.release)} at {when}) failed"
    if current is None or last.state != current.release.state:
        merged = (
            f"release {short(current.id)}, merged {current.release.merged_at},"
            if current
            else "HEAD"
        )
        return f"{merged} is not deployed yet (last deploy: {short(last.release)} at {when})"
    for prefix in SHARED_PREFIXES:
        path = prefix.rstrip("/")
        if gitrepo.tree_of(repo_root, last.commit, path) != gitrepo.tree_of(
            repo_root, "HEAD", path
        ):
            return f"{path}/ changed since the last deploy (at {short(last.commit)}, {when})"
    return None


def analyse(
    environment: str,
    plan: dict[str, Any] | None,
    noise: list[Noise],
    pending: str | None = None,
) -> DriftReport:
    report = DriftReport(environment, pending=pending)
    for rc in (plan or {}).get("resource_changes") or []:
        change = rc.get("change") or {}
        action = action_of(list(change.get("actions") or ["no-op"]))
        if action in {"no-op", "read"}:
            continue
        address = str(rc["address"])
        rules = [n for n in noise if n.matches_address(address)]
        if action != "update":
            whole = next((n for n in rules if not n.attributes), None)
            if whole is not None:
                report.ignored.append((address, "(whole resource)", whole.reason))
            else:
                report.drifted.append(Drifted(address, action, ()))
            continue
        paths = list(
            changed_paths(change.get("before"), change.get("after"), change.get("after_unknown"))
        )
        kept = []
        for path in paths:
            rule = next((n for n in rules if n.covers(path)), None)
            if rule is None:
                kept.append(path)
            else:
                report.ignored.append((address, path, rule.reason))
        if kept or not paths:
            report.drifted.append(Drifted(address, action, tuple(kept)))
    return report


def sync(github: GitHub, report: DriftReport, run_url: str | None = None) -> tuple[str, int | None]:
    """Open or update the environment's drift issue, or close it when drift is gone."""
    mark = marker("drift", report.environment)
    if report.is_pending:
        return "pending", None
    if report.has_drift:
        return github.upsert_issue(mark, LABEL, report.title(), report.body(run_url))
    where = f" ([run]({run_url}))" if run_url else ""
    closed = github.close_issue(mark, LABEL, f"No drift in {report.environment} any more{where}.")
    return ("closed", closed) if closed is not None else ("none", None)
