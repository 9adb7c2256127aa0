"""Round-trip YAML: read with line numbers, write back with comments and key order intact.

ruamel's round-trip mode keeps comments, key order and quoting, so a writing command
changes the bytes of the values it sets and nothing else. The indentation settings match
the committed environment files (a test checks load + dump reproduces them byte for byte).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from envctl.errors import EnvctlError, FieldPath, Problem


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-wrap a long comment or value
    return yaml


def parse(text: str, file: str) -> CommentedMap:
    """Parse one YAML mapping; any syntax error becomes an EnvctlError naming file and line."""
    try:
        with warnings.catch_warnings():
            # ruamel warns (e.g. a reused anchor) where an environment file should be plain;
            # as errors they are reported like any other YAML problem, not printed aside.
            warnings.simplefilter("error")
            doc = _yaml().load(text)
    except RecursionError:
        raise EnvctlError(f"{file}: nesting too deep to be an environment file") from None
    except Exception as exc:  # ruamel raises many error types; all mean "not valid YAML"
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None)
        if not problem:
            first = str(exc).strip().splitlines()
            problem = first[0] if first else type(exc).__name__
        message = f"not valid YAML: {problem}"
        raise EnvctlError.of([Problem(file, (), message, line, rule="yaml")]) from None
    if not isinstance(doc, CommentedMap):
        kind = "empty" if doc is None else f"a {type(doc).__name__}"
        message = f"must be a YAML mapping of settings, found {kind}"
        raise EnvctlError.of([Problem(file, (), message, 1, rule="yaml")])
    return doc


def to_plain(node: Any, file: str, path: FieldPath = (), root: Any = None) -> Any:
    """The document as plain dicts, lists and scalars, as JSON Schema expects.

    Raises for what YAML allows but JSON does not: non-string keys, unquoted timestamps.
    ``root`` is the whole round-trip document, used to name the line of a bad value.
    """
    root = node if root is None else root
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                line = node.lc.key(key)[0] + 1 if isinstance(node, CommentedMap) else None
                message = f"key {key!r} must be a string"
                raise EnvctlError.of([Problem(file, path, message, line, rule="yaml")])
            out[key] = to_plain(value, file, (*path, key), root)
        return out
    if isinstance(node, list):
        return [to_plain(item, file, (*path, i), root) for i, item in enumerate(node)]
    if isinstance(node, dt.date | dt.datetime):
        message = 'write timestamps in quotes, e.g. "2026-12-18T00:00:00Z"'
        raise EnvctlError.of([Problem(file, path, message, line_of(root, path), rule="yaml")])
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node  # None


def line_of(doc: Any, path: FieldPath) -> int | None:
    """1-based line of the deepest node on ``path`` that exists in the round-trip document."""
    node = doc
    line: int | None = getattr(getattr(doc, "lc", None), "line", None)
    for part in path:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line = node.lc.key(part)[0]
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0]
            node = node[part]
        else:
            break
    return line + 1 if line is not None else None


def dump(doc: CommentedMap) -> str:
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    return buf.getvalue()


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` in one step: readers see the old file or the new one, never half."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
