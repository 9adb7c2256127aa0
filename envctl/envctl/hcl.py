"""A module's interface (variables and outputs) read from its .tf files with python-hcl2.

python-hcl2 is a test/dev dependency; it is imported when a function here is called.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Variable:
    name: str
    type: str  # the constraint's source text, e.g. map(object({...}))
    description: str
    default: Any = _NO_DEFAULT
    has_validation: bool = False

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


@dataclass(frozen=True)
class Output:
    name: str
    description: str


def load_tf(path: Path) -> dict[str, Any]:
    import hcl2  # a test/dev dependency: imported only when a module is read

    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = hcl2.load(handle)
    return data


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string quotes ('"text"') and wraps expressions ('${expr}')."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                text: str = json.loads(value)
            except ValueError:
                text = value[1:-1]
            return text
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


def _blocks(module_dir: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for tf in sorted(module_dir.glob("*.tf")):
        for block in load_tf(tf).get(kind, []):
            for name, body in block.items():
                found.append((str(unquote(name)), body))
    return found


def variables(module_dir: Path) -> list[Variable]:
    result = []
    for name, body in _blocks(module_dir, "variable"):
        default = unquote(body["default"]) if "default" in body else _NO_DEFAULT
        result.append(
            Variable(
                name=name,
                type=str(unquote(body.get("type", "any"))),
                description=str(unquote(body.get("description", ""))),
                default=default,
                has_validation=bool(body.get("validation")),
            )
        )
    return result


def outputs(module_dir: Path) -> list[Output]:
    return [
        Output(name=name, description=str(unquote(body.get("description", ""))))
        for name, body in _blocks(module_dir, "output")
    ]
