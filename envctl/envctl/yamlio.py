"""Round-trip YAML: read with line numbers, write back with comments and key order intact.

ruamel's round-trip mode keeps comments, key order and quoting, so a writing command
changes the bytes of the values it sets and nothing else. The indentation settings match
the committed environment files (a test checks load + dump reproduces them byte for byte).

An environment file is small and plain, so anything else is refused before it costs time
or memory, each with the line where it happens: more than :data:`MAX_BYTES`, more than
:data:`MAX_VALUES` values with aliases expanded (a "billion laughs" stops at the alias
that passes the cap, not after expanding it), an alias inside its own anchor, merge keys
(``<<:``), an anchor defined twice, nesting deeper than :data:`MAX_DEPTH`, an integer too
long to convert.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode
from ruamel.yaml.reader import ReaderError

from envctl.errors import QUOTE_LIMIT, EnvctlError, FieldPath, Problem, one_line

MAX_BYTES = 1 << 20  # 1 MiB; the committed files are about 3 KiB
MAX_VALUES = 5_000  # keys, items and scalars, aliases expanded; the committed files <200
MAX_DEPTH = 64  # nested mappings and lists; the committed files 6
_MERGE = "tag:yaml.org,2002:merge"
_INT = "tag:yaml.org,2002:int"


class _BoundedComposer(Composer):
    """ruamel's composer, counting values as it goes and refusing what no environment has.

    An alias costs the expanded size of the node it names (known once that node is
    complete), so the count is what the plain document would hold, and composing stops
    at the alias that passes :data:`MAX_VALUES`.
    """

    def compose_document(self) -> Any:
        self.warn_double_anchors = False  # checked below, with both lines
        self._values = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values it expands to, once complete
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:
                    _refuse(event, f"alias *{event.anchor} is inside its own anchor")
                self._count(size, event, f"alias *{event.anchor} expands to {size:,} values")
            return super().compose_node(parent, index)
        if event.anchor is not None and event.anchor in self.anchors:
            first = self.anchors[event.anchor].start_mark.line + 1
            _refuse(event, f"anchor &{event.anchor} is defined twice (first on line {first})")
        before = self._values
        self._count(1, event, "")
        node: Node = super().compose_node(parent, index)
        self._sizes[id(node)] = self._values - before
        if isinstance(node, MappingNode):
            for key, _ in node.value:
                if str(key.tag) == _MERGE:
                    _refuse(
                        key,
                        "merge keys (<<) are not allowed: write each setting out, so the "
                        "file says what the environment gets",
                    )
        elif isinstance(node, ScalarNode) and str(node.tag) == _INT:
            limit = sys.get_int_max_str_digits() or 4300
            if len(node.value) > limit:
                _refuse(node, f"an integer of {len(node.value):,} digits (at most {limit:,})")
        return node

    def _count(self, size: int, event: Any, what: str) -> None:
        self._values += size
        if self._values > MAX_VALUES:
            reason = f"{what}: " if what else ""
            _refuse(
                event,
                f"{reason}more than {MAX_VALUES:,} values in the document "
                "(keys, items and scalars, aliases expanded): too big for an environment file",
            )


class _Refused(ComposerError):
    """Valid YAML that no environment file should hold."""


def _refuse(at: Any, problem: str) -> NoReturn:
    raise _Refused(None, None, problem, at.start_mark)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Composer = _BoundedComposer
    yaml.max_depth = MAX_DEPTH
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-wrap a long comment or value
    return yaml


def size_problem(data: bytes, file: str) -> Problem | None:
    """The problem with ``data`` if it is over :data:`MAX_BYTES`, on the line that passes it."""
    if len(data) <= MAX_BYTES:
        return None
    line = data.count(b"\n", 0, MAX_BYTES) + 1
    message = (
        f"more than 1 MiB ({MAX_BYTES:,} bytes), passed on this line: too big for an "
        "environment file"
    )
    return Problem(file, (), message, line, rule="yaml")


def decode(data: bytes, file: str) -> str:
    """``data`` as UTF-8 text; a size over the cap or bytes that are not UTF-8 are refused."""
    too_big = size_problem(data, file)
    if too_big:
        raise EnvctlError.of([too_big])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text ({exc.reason} at byte {exc.start:,})"
        raise EnvctlError(f"{file}:{line}: {message}") from None


def parse(text: str, file: str) -> CommentedMap:
    """Parse one YAML mapping; any syntax error becomes an EnvctlError naming file and line."""
    if len(text) > MAX_BYTES // 4:  # only a long text can be over the cap in bytes
        too_big = size_problem(text.encode("utf-8", "replace"), file)
        if too_big:
            raise EnvctlError.of([too_big])
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
        if isinstance(exc, ReaderError) and isinstance(exc.position, int):
            line = text.count("\n", 0, exc.position) + 1  # a NUL or ESC: where it is
        problem = getattr(exc, "problem", None)
        if not problem:
            first = str(exc).strip().splitlines()
            problem = first[0] if first else type(exc).__name__
        problem = one_line(str(problem), QUOTE_LIMIT * 3)  # a duplicate key quotes values
        message = problem if isinstance(exc, _Refused) else f"not valid YAML: {problem}"
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


def atomic_write(path: Path, text: str, file: str | None = None) -> None:
    """Replace ``path`` in one step: readers see the old file or the new one, never half.

    Any failure (a read-only, immutable or full file system) leaves ``path`` as it was
    and is an EnvctlError naming ``file``.
    """
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _cannot_write(file or str(path), exc) from None
        raise


def _cannot_write(file: str, exc: OSError) -> EnvctlError:
    reason = exc.strerror or type(exc).__name__
    return EnvctlError(f"{file}: cannot write ({reason}); nothing was changed")


class Replacement:
    """``path`` replaced by new text, with the old file kept (as a hard link) until
    :meth:`keep` or :meth:`undo`.

    Undoing is a rename, so it needs no free space: a full disk that stops the commit
    after the file was written cannot also stop the old file coming back.
    """

    def __init__(self, path: Path, text: str, old_text: str, file: str) -> None:
        self.path, self._old_text, self._file = path, old_text, file
        self._backup: Path | None = path.with_name(f".{path.name}.{os.getpid()}.old")
        try:
            self._backup.unlink(missing_ok=True)
            os.link(path, self._backup)
        except OSError:  # no hard links here (or an immutable file): undo rewrites instead
            self._backup = None
        try:
            atomic_write(path, text, file)
        except BaseException:
            self._discard()
            raise

    def keep(self) -> None:
        self._discard()

    def undo(self) -> None:
        if self._backup is not None:
            try:
                os.replace(self._backup, self.path)
                return
            except OSError:
                self._discard()
        atomic_write(self.path, self._old_text, self._file)

    def _discard(self) -> None:
        if self._backup is not None:
            self._backup.unlink(missing_ok=True)
            self._backup = None
