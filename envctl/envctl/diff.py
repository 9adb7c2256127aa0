"""What a change to an environment does, in words (for PR comments).

Compares two versions of one environment file (by default HEAD and the working tree)
and lists each difference under a heading: images, scaling, ingress, IAM, secrets, env,
resources, network, probes, rollout, environment. Lists (invokers, calls) are compared
as sets, so the text says who gains or loses access rather than "list changed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CATEGORIES = (
    "environment",
    "services",
    "images",
    "scaling",
    "ingress",
    "iam",
    "secrets",
    "env",
    "resources",
    "network",
    "probes",
    "rollout",
    "other",
)
_CATEGORY = {
    "image": "images",
    "scaling": "scaling",
    "ingress": "ingress",
    "invokers": "iam",
    "calls": "iam",
    "secrets": "secrets",
    "env": "env",
    "resources": "resources",
    "concurrency": "resources",
    "timeout_seconds": "resources",
    "startup_cpu_boost": "resources",
    "vpc": "network",
    "http2": "network",
    "port": "network",
    "probes": "probes",
    "rollout": "rollout",
}
_MISSING = object()


@dataclass(frozen=True)
class Change:
    category: str
    service: str | None
    field: str
    before: Any
    after: Any
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "service": self.service,
            "field": self.field,
            "before": self.before,
            "after": self.after,
            "text": self.text,
        }


def describe(before: dict[str, Any] | None, after: dict[str, Any]) -> list[Change]:
    """Changes from ``before`` (None: the file is new) to ``after``, both plain documents."""
    old = before or {}
    changes: list[Change] = []
    for key in _keys(old, after):
        if key == "services":
            continue
        a, b = old.get(key, _MISSING), after.get(key, _MISSING)
        if a == b:
            continue
        if key == "telemetry" and isinstance(a, dict) and isinstance(b, dict):
            # One line per setting that changed (sampling, a threshold), not the section.
            for field, x, y in _leaf_changes(a, b, key):
                changes.append(
                    Change("environment", None, field, _val(x), _val(y), _words(field, x, y))
                )
        else:
            text = _override_words(a, b) if key == "override" else _words(key, a, b)
            changes.append(Change("environment", None, key, _val(a), _val(b), text))
    old_services: dict[str, Any] = old.get("services") or {}
    new_services: dict[str, Any] = after.get("services") or {}
    for name in _keys(old_services, new_services):
        if name not in old_services:
            changes.append(Change("services", name, "", None, None, f"{name}: new service"))
        elif name not in new_services:
            changes.append(Change("services", name, "", None, None, f"{name}: removed"))
        else:
            changes.extend(_service(name, old_services[name], new_services[name]))
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(changes, key=lambda c: order[c.category])


def _leaf_changes(a: Any, b: Any, path: str) -> list[tuple[str, Any, Any]]:
    """(dotted field, before, after) for each changed value under two mappings."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [] if a == b else [(path, a, b)]
    found: list[tuple[str, Any, Any]] = []
    for key in _keys(a, b):
        found += _leaf_changes(a.get(key, _MISSING), b.get(key, _MISSING), f"{path}.{key}")
    return found


def _service(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out: list[Change] = []
    for key in _keys(old, new):
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if a == b:
            continue
        category = _CATEGORY.get(key, "other")
        if key == "image":
            out.append(Change(category, name, key, _val(a), _val(b), _image_words(name, a, b)))
        elif key in {"invokers", "calls"}:
            out.extend(_members(name, key, a, b))
        elif isinstance(a, dict) and isinstance(b, dict):
            for sub in _keys(a, b):
                x, y = a.get(sub, _MISSING), b.get(sub, _MISSING)
                if x != y:
                    field = f"{key}.{sub}"
                    out.append(
                        Change(
                            category,
                            name,
                            field,
                            _val(x),
                            _val(y),
                            _words(f"{name}: {field}", x, y),
                        )
                    )
        else:
            out.append(
                Change(category, name, key, _val(a), _val(b), _words(f"{name}: {key}", a, b))
            )
    return out


def _members(name: str, key: str, a: Any, b: Any) -> list[Change]:
    old = set(a) if isinstance(a, list) else set()
    new = set(b) if isinstance(b, list) else set()
    out = []
    for item in sorted(new - old):
        text = (
            f"{name}: now calls {item} (gets roles/run.invoker on it and its address)"
            if key == "calls"
            else f"{name}: {item} may now invoke it (roles/run.invoker)"
        )
        out.append(Change("iam", name, key, None, item, text))
    for item in sorted(old - new):
        text = (
            f"{name}: no longer calls {item} (loses roles/run.invoker on it)"
            if key == "calls"
            else f"{name}: {item} may no longer invoke it"
        )
        out.append(Change("iam", name, key, item, None, text))
    return out


def _image_words(name: str, a: Any, b: Any) -> str:
    def part(image: Any, key: str) -> str:
        value = image.get(key) if isinstance(image, dict) else None
        if not isinstance(value, str):
            return "none"
        return value[:19] if key == "digest" else value[:12]

    text = f"{name}: image {part(a, 'commit')} → {part(b, 'commit')}"
    if part(a, "digest") != part(b, "digest"):
        text += f" (digest {part(a, 'digest')}… → {part(b, 'digest')}…)"
    return text


def _override_words(a: Any, b: Any) -> str:
    """A freeze override in words a reviewer cannot miss in the plan comment."""
    if isinstance(b, dict):
        return (
            f"⚠️ freeze override: {_show(b.get('by'))} lets this change through freeze "
            f"windows until {_show(b.get('expires'))} ({_show(b.get('reason'))})"
        )
    return f"freeze override removed (was {_show(a)})"


def _words(label: str, a: Any, b: Any) -> str:
    if a is _MISSING:
        return f"{label}: set to {_show(b)}"
    if b is _MISSING:
        return f"{label}: removed (was {_show(a)})"
    return f"{label}: {_show(a)} → {_show(b)}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _val(value: Any) -> Any:
    return None if value is _MISSING else value


def _keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys([*a, *b]))


def to_markdown(name: str, base: str, changes: list[Change]) -> str:
    if not changes:
        return f"No changes to {name} (compared with {base}).\n"
    lines = [f"### {name}: what this change does (compared with {base})", ""]
    for category in CATEGORIES:
        texts = [c.text for c in changes if c.category == category]
        if texts:
            lines.append(f"**{category}**")
            lines.extend(f"- {t}" for t in texts)
            lines.append("")
    return "\n".join(lines)
