"""OpenTofu type constraints: parse ``map(object({a = string, b = optional(number, 1)}))``,
check a JSON value against one, and print one readably.

Used to prove that ``envctl render`` produces exactly what modules/stack declares (names
and types), and to write the type column of module READMEs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PRIMITIVES = ("string", "number", "bool", "any")
COLLECTIONS = ("list", "set", "map")


@dataclass(frozen=True)
class Prim:
    name: str


@dataclass(frozen=True)
class Coll:
    kind: str
    element: TfType


@dataclass(frozen=True)
class Attr:
    type: TfType
    optional: bool = False
    default: str | None = None  # the default's source text, for display only


@dataclass(frozen=True)
class Obj:
    attrs: dict[str, Attr]


@dataclass(frozen=True)
class Tup:
    elements: tuple[TfType, ...]


TfType = Prim | Coll | Obj | Tup

_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]*|[(){}\[\]=,])")


class TypeSyntaxError(ValueError):
    pass


def parse_type(text: str) -> TfType:
    """Parse a type constraint; accepts python-hcl2's ``${...}`` wrapping."""
    source = text.strip()
    if source.startswith("${") and source.endswith("}"):
        source = source[2:-1]
    parser = _Parser(source)
    result = parser.type()
    parser.end()
    return result


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _peek(self) -> str | None:
        match = _TOKEN.match(self.text, self.pos)
        return match.group(1) if match else None

    def _next(self) -> str:
        match = _TOKEN.match(self.text, self.pos)
        if match is None:
            raise TypeSyntaxError(f"unexpected text at {self.pos}: {self.text[self.pos :]!r}")
        self.pos = match.end()
        return match.group(1)

    def _expect(self, token: str) -> None:
        got = self._next()
        if got != token:
            raise TypeSyntaxError(f"expected {token!r}, got {got!r} in {self.text!r}")

    def end(self) -> None:
        if self.text[self.pos :].strip():
            raise TypeSyntaxError(f"trailing text {self.text[self.pos :]!r}")

    def type(self) -> TfType:
        name = self._next()
        if name in PRIMITIVES:
            return Prim(name)
        if name in COLLECTIONS:
            self._expect("(")
            element = self.type()
            self._expect(")")
            return Coll(name, element)
        if name == "object":
            self._expect("(")
            self._expect("{")
            attrs: dict[str, Attr] = {}
            while self._peek() != "}":
                key = self._next()
                self._expect("=")
                attrs[key] = self._attr()
                if self._peek() == ",":
                    self._next()
            self._expect("}")
            self._expect(")")
            return Obj(attrs)
        if name == "tuple":
            self._expect("(")
            self._expect("[")
            elements: list[TfType] = []
            while self._peek() != "]":
                elements.append(self.type())
                if self._peek() == ",":
                    self._next()
            self._expect("]")
            self._expect(")")
            return Tup(tuple(elements))
        raise TypeSyntaxError(f"unknown type {name!r} in {self.text!r}")

    def _attr(self) -> Attr:
        save = self.pos
        if self._next() != "optional":
            self.pos = save
            return Attr(self.type())
        self._expect("(")
        inner = self.type()
        default = None
        if self._peek() == ",":
            self._next()
            default = self._raw_until_close()
        self._expect(")")
        return Attr(inner, optional=True, default=default)

    def _raw_until_close(self) -> str:
        # A default is any expression; keep its text up to the ')' closing optional(.
        depth, start, quoted = 0, self.pos, False
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == '"' and (self.pos == 0 or self.text[self.pos - 1] != "\\"):
                quoted = not quoted
            elif not quoted and char in "([{":
                depth += 1
            elif not quoted and char in ")]}":
                if depth == 0:
                    return self.text[start : self.pos].strip()
                depth -= 1
            self.pos += 1
        raise TypeSyntaxError(f"unclosed optional( in {self.text!r}")


def check(value: Any, type_: TfType, path: str = "") -> list[str]:
    """Where ``value`` (decoded JSON) does not fit ``type_``; empty when it fits.

    Stricter than OpenTofu's conversions on purpose: no string/number coercion and no
    unexpected object attributes, so a renamed or retyped variable is caught here.
    """
    where = path or "(value)"
    if isinstance(type_, Prim):
        ok = {
            "any": True,
            "string": isinstance(value, str),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
        }[type_.name]
        return [] if ok else [f"{where}: expected {type_.name}, got {_json_kind(value)}"]
    if isinstance(type_, Coll):
        if type_.kind == "map":
            if not isinstance(value, dict):
                return [f"{where}: expected map, got {_json_kind(value)}"]
            return [e for k, v in value.items() for e in check(v, type_.element, f"{path}.{k}")]
        if not isinstance(value, list):
            return [f"{where}: expected {type_.kind}, got {_json_kind(value)}"]
        return [e for i, v in enumerate(value) for e in check(v, type_.element, f"{path}[{i}]")]
    if isinstance(type_, Tup):
        if not isinstance(value, list) or len(value) != len(type_.elements):
            return [f"{where}: expected a tuple of {len(type_.elements)}"]
        return [
            e
            for i, (v, t) in enumerate(zip(value, type_.elements, strict=True))
            for e in check(v, t, f"{path}[{i}]")
        ]
    if not isinstance(value, dict):
        return [f"{where}: expected object, got {_json_kind(value)}"]
    errors = [
        f"{path}.{k}: not an attribute of the declared object"
        for k in value
        if k not in type_.attrs
    ]
    for name, attr in type_.attrs.items():
        if value.get(name) is None:
            if not attr.optional:
                errors.append(f"{path}.{name}: required attribute missing")
            continue
        errors.extend(check(value[name], attr.type, f"{path}.{name}"))
    return errors


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


def format_type(type_: TfType, indent: int = 0) -> str:
    """HCL text of ``type_``; objects one attribute per line, like a variables.tf."""
    pad = "  " * indent
    if isinstance(type_, Prim):
        return type_.name
    if isinstance(type_, Coll):
        return f"{type_.kind}({format_type(type_.element, indent)})"
    if isinstance(type_, Tup):
        return "tuple([" + ", ".join(format_type(t, indent) for t in type_.elements) + "])"
    lines = ["object({"]
    for name, attr in type_.attrs.items():
        inner = format_type(attr.type, indent + 1)
        if attr.optional:
            inner = f"optional({inner}{', ' + attr.default if attr.default else ''})"
        lines.append(f"{pad}  {name} = {inner}")
    lines.append(f"{pad}}})")
    return "\n".join(lines)
