"""Check every resource and data source in .tf files against the providers' real schemas.

`tofu validate` cannot run on these machines (no provider download), so the schemas
come from the pinned npm packages `@cdktf/provider-google` (16.12.1, generated from
hashicorp/google 6.50.0) and `@cdktf/provider-github` (15.3.1, generated from
integrations/github 6.9.0), installed by the project into .cache/node from
.github/tools' lockfile. Their generated bindings carry each schema:

- `lib/<type>/index.js`: every `*ToHclTerraform` function (one per nested block) and the
  resource class's `synthesizeHclAttributes()` list the Terraform keys (snake_case) with
  `isBlock: true|false` and, for a block, the function of its own nested schema;
- `lib/<type>/index.d.ts`: the matching interfaces (`<Class>Config` for the resource,
  `<Class><Block>...` for nested blocks): a property without `?` is required, and a doc
  comment's `Possible values: [...]` lists the values the provider accepts.

Checked, for every `resource` and `data` block (recursively into nested blocks and
`dynamic` blocks' `content`): the type exists; every key is an argument or block of the
schema; a block is written as a block (`x { }`) and an argument as an argument
(`x = ...`); every required argument or block is present; a literal string given to an
argument with documented possible values is one of them. Meta-arguments (count,
for_each, depends_on, provider, lifecycle, provisioner, connection) are left alone, and
so are `terraform`, `provider`, `variable`, `output`, `module` and `locals` blocks.

Not checked: the types of expressions, values that are not literal strings, and any
validation the provider only does at plan or apply time.

Usage: python tools/provider_schema.py [--bindings DIR] [PATH ...]   (default: modules
bootstrap). Exit 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BINDINGS = ROOT / ".cache" / "node" / "node_modules" / "@cdktf"
PROVIDERS = {"google": "provider-google", "github": "provider-github"}
# Which provider release each pinned package was generated from (its README's title).
GENERATED_FROM = {
    "provider-google": "hashicorp/google 6.50.0",
    "provider-github": "integrations/github 6.9.0",
}
META = frozenset({"count", "for_each", "depends_on", "provider", "lifecycle"})
META_BLOCKS = frozenset({"lifecycle", "provisioner", "connection"})

_FUNCTION = re.compile(r"^function (\w+)ToHclTerraform\(struct\) \{$", re.M)
_SYNTH = re.compile(r"^    synthesizeHclAttributes\(\) \{$", re.M)
_CLASS = re.compile(r"^class (\w+) extends cdktf\.Terraform(?:Resource|DataSource) \{$", re.M)
_ENTRY = re.compile(
    r"^\s+(\w+): \{\n\s+value: (.+),\n\s+isBlock: (true|false),\n"
    r"\s+type: \"(\w+)\",\n\s+storageClassType: \"(\w+)\",\n",
    re.M,
)
_NESTED = re.compile(r"(?<![.\w])(\w+)ToHclTerraform\b")
_CAMEL = re.compile(r"(?:struct\.|this\._)(\w+)")
_INTERFACE = re.compile(r"^export interface (\w+)(?: extends [\w.]+)? \{\n(.*?)^\}", re.M | re.S)
_PROPERTY = re.compile(r"/\*\*((?:(?!\*/).)*)\*/\s*readonly (\w+)(\?)?:", re.S)
_POSSIBLE = re.compile(r"Possible values: (\[[^\]]*\])")


@dataclass(frozen=True)
class Field:
    key: str  # the Terraform (snake_case) name
    is_block: bool
    required: bool
    nested: Struct | None = None  # a block's own schema
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Struct:
    name: str  # the interface's name in the bindings, e.g. SqlDatabaseInstanceSettings
    fields: dict[str, Field] = field(default_factory=dict)


# OpenTofu's built-in provider (terraform.io/builtin/terraform) has no npm bindings; its
# two types are small and fixed by OpenTofu itself (docs: "The terraform_remote_state
# Data Source", "The terraform_data Managed Resource Type"), so they are written here.
BUILTIN: dict[tuple[str, str], Struct] = {
    ("data", "terraform_remote_state"): Struct(
        "TerraformRemoteState",
        {
            "backend": Field("backend", is_block=False, required=True),
            "config": Field("config", is_block=False, required=False),
            "defaults": Field("defaults", is_block=False, required=False),
            "workspace": Field("workspace", is_block=False, required=False),
        },
    ),
    ("resource", "terraform_data"): Struct(
        "TerraformData",
        {
            "input": Field("input", is_block=False, required=False),
            "triggers_replace": Field("triggers_replace", is_block=False, required=False),
        },
    ),
}


@dataclass(frozen=True)
class Problem:
    file: str
    address: str  # e.g. google_sql_database_instance.this
    path: str  # where in the body, e.g. settings.ip_configuration ("" at the top)
    name: str  # the bad name
    message: str

    def __str__(self) -> str:
        where = f"{self.address}.{self.path}" if self.path else self.address
        return f"{self.file}: {where}: {self.message}"


class Bindings:
    """The generated bindings of the providers in PROVIDERS, read lazily per type."""

    def __init__(self, root: Path = BINDINGS) -> None:
        self.root = root

    def folder(self, kind: str, rtype: str) -> Path | None:
        provider, _, rest = rtype.partition("_")
        package = PROVIDERS.get(provider)
        if package is None or not rest:
            return None
        name = rest.replace("_", "-")
        if kind == "data":
            name = f"data-{provider}-{name}"
        folder = self.root / package / "lib" / name
        return folder if (folder / "index.js").is_file() else None

    @functools.cache  # noqa: B019 -- one Bindings per run; the cache is the point
    def schema(self, kind: str, rtype: str) -> Struct | None:
        if (kind, rtype) in BUILTIN:
            return BUILTIN[kind, rtype]
        folder = self.folder(kind, rtype)
        if folder is None:
            return None
        return _parse(folder)


def _parse(folder: Path) -> Struct:
    js = (folder / "index.js").read_text(encoding="utf-8")
    dts = (folder / "index.d.ts").read_text(encoding="utf-8")
    interfaces: dict[str, dict[str, tuple[bool, str]]] = {}
    for match in _INTERFACE.finditer(dts):
        props = interfaces.setdefault(match.group(1), {})
        for prop in _PROPERTY.finditer(match.group(2)):
            props[prop.group(2)] = (prop.group(3) is None, prop.group(1))
    # Segments of index.js: each nested block's function, and the class's synthesis.
    marks: list[tuple[int, str]] = [(m.start(), m.group(1)) for m in _FUNCTION.finditer(js)]
    classes = [(m.start(), m.group(1)) for m in _CLASS.finditer(js)]
    for synth in _SYNTH.finditer(js):
        owner = [name for start, name in classes if start < synth.start()][-1]
        marks.append((synth.start(), f"{owner}Config"))
    marks.sort()
    raw: dict[str, list[tuple[str, str, bool]]] = {}
    for index, (start, name) in enumerate(marks):
        end = marks[index + 1][0] if index + 1 < len(marks) else len(js)
        body = js[start:end]
        if "const attrs = {" not in body:
            continue
        body = body[body.index("const attrs = {") :]
        raw[name] = [(m.group(1), m.group(2), m.group(3) == "true") for m in _ENTRY.finditer(body)]
    top = [name for name in raw if name.endswith("Config") and name[:1].isupper()]
    if len(top) != 1:
        raise ValueError(f"{folder}: expected one resource class, found {top}")

    @functools.cache
    def build(name: str) -> Struct:
        iface = name if name[:1].isupper() else name[:1].upper() + name[1:]
        props = interfaces.get(iface, {})
        struct = Struct(iface)
        for key, value, is_block in raw.get(name, []):
            camel = _CAMEL.search(value)
            required, doc = props.get(camel.group(1), (False, "")) if camel else (False, "")
            nested_fn = _NESTED.search(value) if is_block else None
            enum = _POSSIBLE.search(doc)
            struct.fields[key] = Field(
                key=key,
                is_block=is_block,
                required=required,
                nested=build(nested_fn.group(1)) if nested_fn else None,
                enum=tuple(json.loads(enum.group(1))) if enum else (),
            )
        return struct

    return build(top[0])


def _is_block(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and item.get("__is_block__") for item in value)
    )


def _literal(value: Any) -> str | None:
    """The text of a literal string (python-hcl2 keeps its quotes); None for expressions."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        if "${" in value or "%{" in value:
            return None
        try:
            text = json.loads(value)
        except ValueError:
            return None
        return text if isinstance(text, str) else None
    return None


def _unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def _check_body(
    body: dict[str, Any], struct: Struct, where: tuple[str, str, str], top: bool
) -> Iterator[Problem]:
    file, address, path = where

    def problem(name: str, message: str, at: str = path) -> Problem:
        return Problem(file, address, at, name, message)

    def inner(key: str) -> str:
        return f"{path}.{key}" if path else key

    present: set[str] = set()
    for key, value in body.items():
        if key.startswith("__"):
            continue
        if top and (key in META or key in META_BLOCKS):
            continue
        if key == "dynamic":
            for item in value if isinstance(value, list) else [value]:
                for label, dyn in item.items():
                    if label.startswith("__"):
                        continue
                    name = _unquote(label)
                    spec = struct.fields.get(name)
                    if spec is None or not spec.is_block:
                        kind = "an argument" if spec else "not in the schema"
                        yield problem(name, f'dynamic "{name}": {kind}, not a nested block')
                        continue
                    present.add(name)
                    for content in dyn.get("content", []) if isinstance(dyn, dict) else []:
                        if spec.nested is not None and isinstance(content, dict):
                            yield from _check_body(
                                content, spec.nested, (file, address, inner(name)), False
                            )
            continue
        spec = struct.fields.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, struct.fields, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            yield problem(key, f'unknown argument or block "{key}"{hint}')
            continue
        present.add(key)
        if spec.is_block:
            if not _is_block(value):
                yield problem(
                    key, f'"{key}" is a nested block: write `{key} {{ ... }}`, not `{key} = ...`'
                )
                continue
            for item in value:
                if spec.nested is not None:
                    yield from _check_body(item, spec.nested, (file, address, inner(key)), False)
            continue
        if _is_block(value):
            yield problem(key, f'"{key}" is an argument: write `{key} = ...`, not a block')
            continue
        text = _literal(value)
        if spec.enum and text is not None and text not in spec.enum:
            allowed = ", ".join(spec.enum)
            yield problem(key, f'"{key}" = "{text}" is not one of the possible values: {allowed}')
    for key, spec in struct.fields.items():
        if spec.required and key not in present:
            what = "block" if spec.is_block else "argument"
            yield problem(key, f'required {what} "{key}" is missing')


def check_file(tf: Path, bindings: Bindings, shown: str | None = None) -> list[Problem]:
    import hcl2  # a test/dev dependency

    with tf.open(encoding="utf-8") as handle:
        doc: dict[str, Any] = hcl2.load(handle)
    name = shown or str(tf)
    problems: list[Problem] = []
    for kind in ("resource", "data"):
        for block in doc.get(kind, []):
            for type_label, named in block.items():
                rtype = _unquote(type_label)
                for label, body in named.items():
                    if label.startswith("__"):
                        continue
                    address = f"{'data.' if kind == 'data' else ''}{rtype}.{_unquote(label)}"
                    struct = bindings.schema(kind, rtype)
                    if struct is None:
                        what = "data source" if kind == "data" else "resource type"
                        problems.append(
                            Problem(name, address, "", rtype, f'unknown {what} "{rtype}"')
                        )
                        continue
                    problems.extend(_check_body(body, struct, (name, address, ""), True))
    return problems


def tf_files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(p for p in sorted(path.rglob("*.tf")) if ".terraform" not in p.parts)
    return found


def check(paths: Iterable[Path], bindings: Bindings | None = None) -> list[Problem]:
    bindings = bindings or Bindings()
    problems: list[Problem] = []
    for tf in tf_files(paths):
        shown = str(tf.relative_to(ROOT)) if tf.is_relative_to(ROOT) else str(tf)
        problems.extend(check_file(tf, bindings, shown))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bindings", type=Path, default=BINDINGS, help="the @cdktf folder")
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.paths or [p for p in (ROOT / "modules", ROOT / "bootstrap") if p.exists()]
    for package in PROVIDERS.values():
        if not (args.bindings / package / "lib").is_dir():
            print(
                f"no {package} under {args.bindings}: npm ci .github/tools first", file=sys.stderr
            )
            return 2
    problems = check(paths, Bindings(args.bindings))
    for problem in problems:
        print(problem)
    print(f"{len(tf_files(paths))} files checked, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
