"""The committed environment files themselves: round-trip safe, and every value that
differs from a neighbour in the promotion chain says why in a comment on its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envctl.errors import FieldPath
from envctl.load import list_environments, load_environment
from envctl.yamlio import dump, line_of, parse

# Values that differ by nature, not by choice: names of per-environment resources, the
# chain link itself, and the images (they change with every release, by envctl).
IDENTITY = {("project",), ("registry",), ("state_bucket",), ("promotion", "from")}


@pytest.mark.parametrize("name", ["local", "dev", "staging", "prod"])
def test_round_trip_is_byte_identical(repo_root: Path, name: str) -> None:
    """Writers re-dump the whole file; that must change nothing they did not set."""
    text = (repo_root / "environments" / f"{name}.yaml").read_text()
    assert dump(parse(text, name)) == text


def _leaves(node: Any, path: FieldPath = ()) -> dict[FieldPath, Any]:
    if isinstance(node, dict):
        out: dict[FieldPath, Any] = {}
        for key, value in node.items():
            out.update(_leaves(value, (*path, key)))
        return out
    return {path: node}


def _exempt(path: FieldPath) -> bool:
    return path in IDENTITY or (len(path) > 2 and path[0] == "services" and path[2] == "image")


def test_values_that_differ_from_a_neighbour_carry_a_comment(repo_root: Path) -> None:
    envs = {n: load_environment(repo_root, n) for n in list_environments(repo_root)}
    missing: list[str] = []
    for _name, env in envs.items():
        source = env.promotion_source
        if source is None:
            continue
        pair = (envs[source], env)
        ours, theirs = _leaves(pair[0].data), _leaves(pair[1].data)
        for path in sorted(ours.keys() & theirs.keys(), key=str):
            if _exempt(path) or ours[path] == theirs[path]:
                continue
            for side in pair:
                line = line_of(side.doc, path)
                assert line is not None
                if "#" not in side.text.splitlines()[line - 1]:
                    missing.append(f"{side.file}:{line}: {'.'.join(map(str, path))}")
    assert not missing, "values differing from a neighbour need a why-comment:\n" + "\n".join(
        missing
    )


def test_checkout_is_local_only_and_commented(repo_root: Path) -> None:
    for name in list_environments(repo_root):
        env = load_environment(repo_root, name)
        for svc in env.services:
            commit = env.image(svc).commit
            if commit == "checkout":
                assert env.platform == "docker"
                line = line_of(env.doc, ("services", svc, "image", "commit"))
                assert line is not None
                assert "#" in env.text.splitlines()[line - 1]
