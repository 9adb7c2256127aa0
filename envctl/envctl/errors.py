"""Errors envctl reports: each names a file, a field (a JSON path) and, where known, a line.

Every failure a user can cause ends as an ``EnvctlError``; the CLI prints one line per
problem on stderr and exits non-zero, never a traceback. A value a message quotes is cut
to :data:`QUOTE_LIMIT` characters (:func:`quote`), and no line is longer than
:data:`LINE_LIMIT`, whatever the file holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A field is addressed by the keys and indexes leading to it, e.g.
# ("services", "pipeline", "image", "commit") or ("freeze", 0, "end").
PathPart = str | int
FieldPath = tuple[PathPart, ...]


QUOTE_LIMIT = 60  # characters of a quoted value
LINE_LIMIT = 400  # characters of one message line


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters with the full length said: a message
    quotes what the author wrote, never a whole megabyte of it."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value):,} characters)"
    text = repr(value)
    if len(text) > limit:
        what = "digits" if isinstance(value, int) else "characters"
        return f"{text[:limit]}… ({len(text):,} {what})"
    return text


def one_line(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    line = " ".join(text.splitlines())
    if len(line) > limit:  # the cut line, with its note, still fits in ``limit``
        line = f"{line[: limit - 40]}… ({len(line):,} characters in all)"
    return line


def format_path(path: Sequence[PathPart]) -> str:
    """Dotted JSON path: services.pipeline.image.commit, freeze[0].end; '(document)' if empty."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.match(part):
            key = json.dumps(part[:QUOTE_LIMIT]) + ("…" if len(part) > QUOTE_LIMIT else "")
            text += f"[{key}]"  # a key with dots, spaces or newlines, quoted
        else:
            text += f".{part}" if text else part
    return text or "(document)"


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]{1,60}$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one field of one file."""

    file: str
    path: FieldPath
    message: str
    line: int | None = None
    rule: str = "schema"

    @property
    def field(self) -> str:
        return format_path(self.path)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return one_line(f"{where}: {self.field}: {self.message}")  # one line on stderr

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "field": self.field,
            "line": self.line,
            "rule": self.rule,
            "message": one_line(self.message),
        }


class EnvctlError(Exception):
    """A failure to report to the user: a list of problems, or one plain message."""

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        self.problems = tuple(problems)
        super().__init__(message)

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> EnvctlError:
        return cls(str(problems[0]) if problems else "invalid", problems)

    def lines(self) -> list[str]:
        """What the CLI prints on stderr: one line per problem."""
        if self.problems:
            return [str(p) for p in self.problems]
        return [one_line(str(self))]
