"""A small evaluator for the part of CEL (Common Expression Language) that a Workload
Identity provider's attribute mapping and attribute condition are written in: string
literals, `assertion.NAME` field access, `has(assertion.NAME)`, `+` on strings, `==`,
`!=`, `!`, `&&`, `||`, `cond ? a : b` and parentheses. Anything else is a SyntaxError,
so an expression this cannot read fails the test instead of being guessed at.

Field access on a missing key raises NoSuchKey, as CEL does ("no such key"), which is why
the mapping guards `assertion.environment` with `has()`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>&&|\|\||==|!=|[?:()+.!])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.X,
)


class NoSuchKey(KeyError):
    """CEL's runtime error for a field that the message or map does not have."""


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(source: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        match = _TOKEN.match(source, pos)
        if not match:
            raise SyntaxError(f"cannot read CEL at {source[pos:]!r}")
        kind = match.lastgroup or ""
        out.append(_Tok(kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, source: str, variables: dict[str, Any]) -> None:
        self.toks = _tokens(source)
        self.i = 0
        self.vars = variables

    def peek(self) -> str | None:
        return self.toks[self.i].text if self.i < len(self.toks) else None

    def take(self, text: str | None = None) -> _Tok:
        if self.i >= len(self.toks):
            raise SyntaxError("unexpected end of expression")
        tok = self.toks[self.i]
        if text is not None and tok.text != text:
            raise SyntaxError(f"expected {text!r}, got {tok.text!r}")
        self.i += 1
        return tok

    # Lazy evaluation: each level returns a thunk so `?:`, `&&`, `||` short-circuit.
    def parse(self) -> Any:
        value = self.ternary()
        if self.peek() is not None:
            raise SyntaxError(f"unexpected {self.peek()!r}")
        return value()

    def ternary(self) -> Any:
        cond = self.disjunction()
        if self.peek() != "?":
            return cond
        self.take("?")
        then = self.ternary()
        self.take(":")
        other = self.ternary()
        return lambda: then() if _bool(cond()) else other()

    def disjunction(self) -> Any:
        left = self.conjunction()
        while self.peek() == "||":
            self.take()
            right = self.conjunction()
            left = (lambda a, b: lambda: _bool(a()) or _bool(b()))(left, right)
        return left

    def conjunction(self) -> Any:
        left = self.equality()
        while self.peek() == "&&":
            self.take()
            right = self.equality()
            left = (lambda a, b: lambda: _bool(a()) and _bool(b()))(left, right)
        return left

    def equality(self) -> Any:
        left = self.additive()
        while self.peek() in {"==", "!="}:
            op = self.take().text
            right = self.additive()
            if op == "==":
                left = (lambda a, b: lambda: a() == b())(left, right)
            else:
                left = (lambda a, b: lambda: a() != b())(left, right)
        return left

    def additive(self) -> Any:
        left = self.unary()
        while self.peek() == "+":
            self.take()
            right = self.unary()
            left = (lambda a, b: lambda: _concat(a(), b()))(left, right)
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            inner = self.unary()
            return lambda: not _bool(inner())
        return self.primary()

    def primary(self) -> Any:
        tok = self.take()
        if tok.kind == "string":
            text = tok.text
            if text.startswith("'"):
                text = '"' + text[1:-1].replace('"', '\\"') + '"'
            value = json.loads(text)
            return lambda: value
        if tok.text == "(":
            inner = self.ternary()
            self.take(")")
            return inner
        if tok.kind == "name" and tok.text == "has":
            self.take("(")
            root, key = self.selection()
            self.take(")")
            return lambda: key in self._root(root)
        if tok.kind == "name":
            self.i -= 1
            root, key = self.selection()
            return lambda: self._field(root, key)
        raise SyntaxError(f"unexpected {tok.text!r}")

    def selection(self) -> tuple[str, str]:
        root = self.take().text
        self.take(".")
        key = self.take()
        if key.kind != "name":
            raise SyntaxError(f"expected a field name after {root}., got {key.text!r}")
        return root, key.text

    def _root(self, root: str) -> dict[str, Any]:
        if root not in self.vars:
            raise SyntaxError(f"unknown variable {root!r}")
        value: dict[str, Any] = self.vars[root]
        return value

    def _field(self, root: str, key: str) -> Any:
        mapping = self._root(root)
        if key not in mapping:
            raise NoSuchKey(f"no such key: {key}")
        return mapping[key]


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"CEL needs a bool here, got {value!r}")
    return value


def _concat(left: Any, right: Any) -> str:
    if not (isinstance(left, str) and isinstance(right, str)):
        raise TypeError(f"CEL + here joins strings, got {left!r} and {right!r}")
    return left + right


def evaluate(expression: str, **variables: dict[str, Any]) -> Any:
    """Evaluate ``expression`` with the given top-level variables (e.g. assertion=...)."""
    return _Parser(expression, variables).parse()
