"""Read environment files: parse, check against the schema and the policy rules.

This is the one entry point for reading environments; commands, tests and the local
harness all go through :func:`load_environment`, so "valid" means the same everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from envctl import policy
from envctl.errors import EnvctlError, Problem
from envctl.model import Environment
from envctl.schema import SCHEMA_PATH, schema_problems
from envctl.yamlio import MAX_BYTES, decode, parse, to_plain

ENV_DIR = Path("environments")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# The promotion chain's usual order; other environments sort after these by name.
_ORDER = ("local", "dev", "staging", "prod")


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` that holds environments/schema.json."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / SCHEMA_PATH).is_file():
            return candidate
    raise EnvctlError(f"no {SCHEMA_PATH} in {here} or any parent: run envctl inside the repo")


def env_file(name: str) -> str:
    return f"{ENV_DIR}/{name}.yaml"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise EnvctlError(f"{name!r} is not an environment name (lowercase, like 'staging')")
    return name


def list_environments(repo_root: Path) -> list[str]:
    names = [p.stem for p in (repo_root / ENV_DIR).glob("*.yaml") if _NAME.match(p.stem)]
    return sorted(names, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


def read_text(repo_root: Path, name: str) -> str:
    path = repo_root / env_file(check_name(name))
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # never more than the cap, whatever the size
    except FileNotFoundError:
        known = ", ".join(list_environments(repo_root)) or "none"
        raise EnvctlError(f"{env_file(name)}: no such environment (known: {known})") from None
    except OSError as exc:
        raise EnvctlError(f"{env_file(name)}: cannot read: {exc.strerror}") from None
    return decode(data, env_file(name))


def parse_environment(
    repo_root: Path, name: str, text: str, *, check: bool = True, file: str | None = None
) -> Environment:
    """Parse ``text`` as environment ``name``; with ``check``, also schema and policy.

    ``check=False`` is for old versions read from git history, where only the images
    matter and today's rules may not have existed.
    """
    file = file or env_file(name)
    doc = parse(text, file)
    data = to_plain(doc, file)
    env = Environment(name=name, repo_root=repo_root, file=file, data=data, text=text, doc=doc)
    if check:
        problems: list[Problem] = schema_problems(repo_root, data, doc, file)
        if not problems:  # policy rules assume the shape the schema guarantees
            problems = policy.check(env)
        if problems:
            raise EnvctlError.of(problems)
    return env


def load_environment(repo_root: Path, name: str) -> Environment:
    """The validated environment ``name`` from the working tree (raises EnvctlError)."""
    return parse_environment(repo_root, name, read_text(repo_root, name))
