"""Reads bootstrap's OpenTofu (python-hcl2) and resolves the few expressions the identity
tests need, the way OpenTofu would: `var.X` through the caller's module arguments (or the
variable's default), `module.M.OUT` through the module's outputs.tf, a
`terraform_remote_state` output through the root whose gcs backend is that bucket and
prefix, `${...}` interpolations inside strings, and `tonumber(...)`, `path.root`. A managed resource's
computed attribute (a pool's `name`) resolves to a symbol naming the root and resource
that creates it, so two roots resolve to the same value only when they mean the same
object. Data source attributes come from `facts` (what GitHub would answer). Anything
else raises Unresolvable: the test fails rather than guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from envctl import hcl

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "bootstrap"
GCP_ROOTS = sorted(p for p in (BOOTSTRAP / "gcp").iterdir() if p.is_dir())
GITHUB_ROOT = BOOTSTRAP / "github"
_INTERP = re.compile(r"\$\{([^{}]*)\}")


class Unresolvable(ValueError):
    pass


@cache
def _load(directory: Path) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for tf in sorted(directory.glob("*.tf")):
        for kind, blocks in hcl.load_tf(tf).items():
            merged.setdefault(kind, []).extend(blocks)
    return merged


def modules(directory: Path) -> dict[str, dict[str, Any]]:
    return {
        str(hcl.unquote(n)): body
        for b in _load(directory).get("module", [])
        for n, body in b.items()
    }


def resources(directory: Path, kind: str = "resource") -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for block in _load(directory).get(kind, []):
        for rtype, named in block.items():
            for name, body in named.items():
                if name != "__is_block__":
                    found[(str(hcl.unquote(rtype)), str(hcl.unquote(name)))] = body
    return found


def locals_(directory: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in _load(directory).get("locals", []):
        out.update({k: v for k, v in block.items() if not k.startswith("__")})
    return out


def outputs(directory: Path) -> dict[str, Any]:
    return {
        str(hcl.unquote(n)): body["value"]
        for b in _load(directory).get("output", [])
        for n, body in b.items()
    }


def backend(root: Path) -> dict[str, str]:
    (terraform,) = _load(root)["terraform"]
    (block,) = terraform["backend"]
    (config,) = hcl.unquote(block).values()
    return {k: v for k, v in config.items() if not k.startswith("__")}


def required_providers(root: Path) -> dict[str, dict[str, str]]:
    (terraform,) = _load(root)["terraform"]
    (providers,) = terraform["required_providers"]
    return {k: hcl.unquote(v) for k, v in providers.items() if not k.startswith("__")}


@dataclass
class Scope:
    directory: Path
    root: Path  # the root module this instance belongs to
    args: dict[str, Any] = field(default_factory=dict)  # the caller's raw arguments
    caller: Scope | None = None
    facts: dict[str, str] = field(default_factory=dict)  # data source attributes, by address

    def module(self, name: str) -> Scope:
        body = modules(self.directory)[name]
        target = (self.directory / str(hcl.unquote(body["source"]))).resolve()
        return Scope(target, self.root, body, self, self.facts)


def root_scope(root: Path, facts: dict[str, str] | None = None) -> Scope:
    return Scope(root.resolve(), root.resolve(), facts=facts or {})


def resolve(value: Any, scope: Scope) -> Any:
    """A python-hcl2 value (quoted string, ${expr}, dict, list) resolved in scope."""
    if isinstance(value, dict):
        return {
            hcl.unquote(k): resolve(v, scope) for k, v in value.items() if not k.startswith("__")
        }
    if isinstance(value, list):
        return [resolve(v, scope) for v in value]
    if not isinstance(value, str):
        return value
    if value.startswith("${") and value.endswith("}") and _INTERP.fullmatch(value):
        return expression(value[2:-1], scope)
    text = hcl.unquote(value)
    if not isinstance(text, str):
        return text
    return _INTERP.sub(lambda m: str(expression(m.group(1), scope)), text)


def expression(expr: str, scope: Scope) -> Any:
    expr = expr.strip()
    if expr.startswith("tonumber(") and expr.endswith(")"):
        return expression(expr[len("tonumber(") : -1], scope)
    if expr in scope.facts:
        return scope.facts[expr]
    if expr == "path.root":
        return str(scope.root)
    if expr == "path.module":
        return str(scope.directory)
    parts = expr.split(".")
    if parts[0] == "var" and len(parts) >= 2:
        return _lookup(_var(parts[1], scope), parts[2:], expr)
    if parts[0] == "local" and len(parts) >= 2:
        return _lookup(resolve(locals_(scope.directory)[parts[1]], scope), parts[2:], expr)
    if parts[0] == "module" and len(parts) >= 3:
        return _lookup(_module_output(scope.module(parts[1]), parts[2]), parts[3:], expr)
    if (
        parts[:2] == ["data", "terraform_remote_state"]
        and len(parts) >= 5
        and parts[3] == "outputs"
    ):
        return _lookup(_remote_output(scope, parts[2], parts[4]), parts[5:], expr)
    if len(parts) == 3 and (parts[0], parts[1]) in resources(scope.directory):
        rel = scope.directory.relative_to(REPO)
        return f"<{scope.root.name}:{rel}:{expr}>"
    raise Unresolvable(f"{scope.directory.relative_to(REPO)}: cannot resolve {expr!r}")


def _lookup(value: Any, path: list[str], expr: str) -> Any:
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise Unresolvable(f"cannot resolve {expr!r}")
        value = value[key]
    return value


def _var(name: str, scope: Scope) -> Any:
    if name in scope.args:
        if scope.caller is None:
            raise Unresolvable(f"var.{name} in a root")
        return resolve(scope.args[name], scope.caller)
    for var in hcl.variables(scope.directory):
        if var.name == name and not var.required:
            return var.default
    raise Unresolvable(f"{scope.directory.relative_to(REPO)}: var.{name} is not given")


def _module_output(scope: Scope, name: str) -> Any:
    if (scope.directory / "main.tf").read_text().startswith("# Reads one environment file"):
        return environment_file(resolve(scope.args["path"], scope.caller or scope), name)
    return resolve(outputs(scope.directory)[name], scope)


def environment_file(path: str, name: str) -> Any:
    """bootstrap/modules/environment-file's outputs, computed as it computes them."""
    file = Path(path).resolve()
    data = yaml.safe_load(file.read_text())
    values = {
        "environment": file.stem,
        "state_bucket": data["state_bucket"],
        "project_id": data["project"],
    }
    if name not in values:
        raise Unresolvable(f"environment-file output {name}")
    return values[name]


def _remote_output(scope: Scope, label: str, name: str) -> Any:
    body = resources(scope.directory, "data")[("terraform_remote_state", label)]
    assert hcl.unquote(body["backend"]) == "gcs", f"remote state {label} is not gcs"
    config = resolve(body["config"], scope)
    for root in GCP_ROOTS:
        if backend(root) == config:
            return resolve(outputs(root)[name], root_scope(root, scope.facts))
    raise Unresolvable(f"no bootstrap root keeps its state at {config}")
