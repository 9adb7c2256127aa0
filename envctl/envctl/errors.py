"""Errors envctl reports: each names a file, a field (a JSON path) and, where known, a line.

Every failure a user can cause ends as an ``EnvctlError``; the CLI prints one line per
problem on stderr and exits non-zero, never a traceback.
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


def format_path(path: Sequence[PathPart]) -> str:
    """Dotted JSON path: services.pipeline.image.commit, freeze[0].end; '(document)' if empty."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.match(part):
            text += f"[{json.dumps(part)}]"  # a key with dots, spaces or newlines, quoted
        else:
            text += f".{part}" if text else part
    return text or "(document)"


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


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
        message = " ".join(self.message.splitlines())  # always one line on stderr
        return f"{where}: {self.field}: {message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "field": self.field,
            "line": self.line,
            "rule": self.rule,
            "message": self.message,
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
        return [" ".join(str(self).splitlines())]
