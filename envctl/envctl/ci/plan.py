"""Read OpenTofu plans (``tofu show -json PLANFILE``): summarise them, and compare two.

The summary goes into PR comments and drift issues. The comparison is the guard in
front of ``tofu apply``: the plan a reviewer saw on the pull request must be the plan
the deploy is about to apply, or the deploy refuses. Two plans are "the same" when every
resource and output they would change changes in the same way (same actions, same
before/after values, same unknowns); resources a plan leaves alone do not count, so
unrelated state (another resource refreshed) does not block a deploy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# tofu's own symbols for each kind of change, as in its human-readable plan output.
SYMBOLS = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
_IGNORED = ("no-op", "read")  # nothing is changed by these


class PlanError(ValueError):
    """A file that is not the JSON of a tofu plan."""


def load_plan(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"{path}: no such file (run: tofu show -json PLANFILE > {path})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "format_version" not in data:
        raise PlanError(f"{path}: not the output of tofu show -json (no format_version)")
    return data


def action_of(actions: list[str]) -> str:
    """One word for a change's action list: create, update, delete, replace, no-op, read."""
    if sorted(actions) == ["create", "delete"]:
        return "replace"
    return actions[0] if len(actions) == 1 else "+".join(actions)


def changed_paths(before: Any, after: Any, unknown: Any = None, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the attributes that differ between ``before`` and ``after``.

    ``unknown`` mirrors ``after`` with ``true`` where a value is known only after apply;
    such an attribute counts as changed. Lists of different lengths are one change.
    """
    if unknown is True:
        yield prefix or "(value)"
        return
    if isinstance(before, dict) and isinstance(after, dict):
        unknown_map = unknown if isinstance(unknown, dict) else {}
        for key in sorted(set(before) | set(after) | set(unknown_map)):
            path = f"{prefix}.{key}" if prefix else str(key)
            yield from changed_paths(before.get(key), after.get(key), unknown_map.get(key), path)
        return
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        unknown_list = unknown if isinstance(unknown, list) else [None] * len(after)
        for i, (a, b) in enumerate(zip(before, after, strict=True)):
            u = unknown_list[i] if i < len(unknown_list) else None
            yield from changed_paths(a, b, u, f"{prefix}[{i}]")
        return
    if before != after:
        yield prefix or "(value)"


@dataclass(frozen=True)
class ResourceChange:
    address: str
    action: str
    attributes: tuple[str, ...]  # for updates: which attributes change


@dataclass(frozen=True)
class PlanSummary:
    changes: tuple[ResourceChange, ...]
    outputs: tuple[str, ...]

    @property
    def add(self) -> int:
        return sum(c.action in {"create", "replace"} for c in self.changes)

    @property
    def change(self) -> int:
        return sum(c.action == "update" for c in self.changes)

    @property
    def destroy(self) -> int:
        return sum(c.action in {"delete", "replace"} for c in self.changes)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.outputs

    def headline(self) -> str:
        if self.empty:
            return "No changes. The infrastructure matches the configuration."
        return f"Plan: {self.add} to add, {self.change} to change, {self.destroy} to destroy."

    def as_dict(self) -> dict[str, Any]:
        return {
            "add": self.add,
            "change": self.change,
            "destroy": self.destroy,
            "resources": [
                {"address": c.address, "action": c.action, "attributes": list(c.attributes)}
                for c in self.changes
            ],
            "outputs": list(self.outputs),
        }

    def to_markdown(self, limit: int = 60) -> str:
        lines = [f"**{self.headline()}**"]
        if self.changes:
            lines += ["", f"<details><summary>Resources ({len(self.changes)})</summary>", ""]
            for c in self.changes[:limit]:
                what = f" ({', '.join(c.attributes[:8])}{', …' if len(c.attributes) > 8 else ''})"
                lines.append(
                    f"- `{SYMBOLS.get(c.action, '?')}` `{c.address}` {c.action}"
                    + (what if c.action == "update" and c.attributes else "")
                )
            if len(self.changes) > limit:
                lines.append(f"- … and {len(self.changes) - limit} more")
            lines += ["", "</details>"]
        if self.outputs:
            lines += ["", "Outputs that change: " + ", ".join(f"`{o}`" for o in self.outputs)]
        return "\n".join(lines) + "\n"


def summarize(plan: dict[str, Any]) -> PlanSummary:
    changes = []
    for rc in plan.get("resource_changes") or []:
        change = rc.get("change") or {}
        action = action_of(list(change.get("actions") or ["no-op"]))
        if action in _IGNORED:
            continue
        attributes: tuple[str, ...] = ()
        if action == "update":
            attributes = tuple(
                changed_paths(
                    change.get("before"), change.get("after"), change.get("after_unknown")
                )
            )
        changes.append(ResourceChange(str(rc["address"]), action, attributes))
    outputs = tuple(
        sorted(
            name
            for name, oc in (plan.get("output_changes") or {}).items()
            if action_of(list(oc.get("actions") or ["no-op"])) not in _IGNORED
        )
    )
    return PlanSummary(tuple(sorted(changes, key=lambda c: c.address)), outputs)


def _fingerprint(plan: dict[str, Any]) -> dict[str, Any]:
    """What a plan would do, keyed by resource address (and ``output.NAME``)."""
    keys = ("actions", "before", "after", "after_unknown", "before_sensitive", "after_sensitive")
    found: dict[str, Any] = {}
    for rc in plan.get("resource_changes") or []:
        change = rc.get("change") or {}
        if action_of(list(change.get("actions") or ["no-op"])) in _IGNORED:
            continue
        found[str(rc["address"])] = {k: change.get(k) for k in keys}
    for name, oc in (plan.get("output_changes") or {}).items():
        if action_of(list(oc.get("actions") or ["no-op"])) in _IGNORED:
            continue
        found[f"output.{name}"] = {k: oc.get(k) for k in keys}
    return found


def differences(reviewed: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Why ``current`` is not the plan that was reviewed; empty when they are the same."""
    a, b = _fingerprint(reviewed), _fingerprint(current)
    out = []
    for address in sorted(set(a) | set(b)):
        if address not in b:
            out.append(f"{address}: was in the reviewed plan, is no longer planned")
        elif address not in a:
            out.append(f"{address}: not in the reviewed plan, planned now")
        elif a[address] != b[address]:
            what = [k for k in a[address] if a[address][k] != b[address][k]]
            detail = ", ".join(what)
            if "actions" not in what:
                ours, theirs = a[address], b[address]
                paths = list(changed_paths(ours.get("after"), theirs.get("after")))
                paths = paths or list(changed_paths(ours.get("before"), theirs.get("before")))
                paths = [p for p in paths if p != "(value)"]  # a bare value names nothing
                if paths:
                    detail += f" ({', '.join(paths[:5])})"
            out.append(f"{address}: planned differently now: {detail}")
    return out
