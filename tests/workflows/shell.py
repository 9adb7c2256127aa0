"""Find the commands a workflow's `run:` scripts execute (enough shell for our scripts)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "{", "}", "then", "do", "else"}
_REDIRECTS = {">", ">>", "<", ">&", "<&", "&>", "&>>"}


def commands(script: str) -> Iterator[list[str]]:
    """Each simple command of ``script`` as an argv list (redirections removed)."""
    text = _EXPRESSION.sub("EXPR", script).replace("\\\n", " ")
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:  # an unbalanced quote inside a heredoc body or similar
            continue
        argv: list[str] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            following = tokens[i + 1] if i + 1 < len(tokens) else ""
            if token.isdigit() and following in _REDIRECTS:
                i += 1  # the "2" of "2>&1" names a file descriptor, not an argument
                continue
            if token in _REDIRECTS:
                i += 2  # the redirection and its target
                continue
            if token in _SEPARATORS:
                if argv:
                    yield argv
                argv = []
            else:
                argv.append(token)
            i += 1
        if argv:
            yield argv


def envctl_calls(script: str) -> Iterator[list[str]]:
    """Arguments of every ``envctl`` invocation (bare, or by path like .venv/bin/envctl)."""
    for argv in commands(script):
        if argv and argv[0].rsplit("/", 1)[-1] == "envctl":
            yield argv[1:]


def envctl_ci_calls(script: str) -> Iterator[list[str]]:
    """Arguments of every ``python -m envctl.ci`` invocation."""
    for argv in commands(script):
        for i in range(len(argv) - 1):
            if argv[i] == "-m" and argv[i + 1] == "envctl.ci" and "python" in argv[0]:
                yield argv[i + 2 :]
                break
