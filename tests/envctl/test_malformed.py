"""Malformed input never produces a traceback: only EnvctlError, whose lines each name the
file (and a field), and through the CLI exit status 1 with those lines on stderr."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envctl.errors import EnvctlError
from envctl.load import parse_environment
from envctl.yamlio import dump

Cli = Callable[..., Any]  # the `cli` fixture (conftest.py)

VALID = (Path(__file__).resolve().parents[2] / "environments" / "dev.yaml").read_text()
ROOT = Path(__file__).resolve().parents[2]
FILE = "environments/dev.yaml"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["checkout", "latest", "sha256:", "internal", "grpc", "pipeline", ""]),
)
keys = st.one_of(
    st.sampled_from(
        [
            "platform",
            "services",
            "pipeline",
            "image",
            "commit",
            "digest",
            "env",
            "freeze",
            "promotion",
            "from",
            "scaling",
            "probes",
            "startup",
            "type",
            "calls",
            "port",
        ]
    ),
    st.text(max_size=10),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


def _assert_clean(text: str) -> None:
    try:
        parse_environment(ROOT, "dev", text)
    except EnvctlError as exc:
        lines = exc.lines()
        assert lines
        for line in lines:
            assert line.startswith(FILE), line
            assert "\n" not in line
            assert "Traceback" not in line


common = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@common
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    _assert_clean(text)


@common
@given(st.data())
def test_valid_file_with_bytes_cut_or_inserted(data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(VALID)), label="start")
    length = data.draw(st.integers(0, 40), label="length")
    insert = data.draw(st.text(alphabet=" :-[]{}'\"#&*!|>\n\tab1", max_size=8), label="insert")
    _assert_clean(VALID[:start] + insert + VALID[start + length :])


@common
@given(documents)
def test_arbitrary_structures(document: object) -> None:
    import io

    from ruamel.yaml import YAML

    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump(document, buf)
    _assert_clean(buf.getvalue())


@common
@given(st.dictionaries(keys, documents, max_size=4))
def test_valid_file_with_a_service_replaced(service: dict[str, object]) -> None:
    from envctl.yamlio import parse

    doc = parse(VALID, FILE)
    doc["services"]["pipeline"] = service
    _assert_clean(dump(doc))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "- a list\n",
        "platform: [unclosed\n",
        "a: &x 1\nb: &x 2\n",
        "{" * 5000,
        "platform: docker\nplatform: cloudrun\n",
        "? [a, b]\n: c\n",
        "\x00\x01",
    ],
    ids=[
        "empty",
        "list",
        "unclosed",
        "reused-anchor",
        "deep",
        "duplicate-key",
        "complex-key",
        "nul",
    ],
)
def test_cli_reports_one_clean_line_per_problem(env_repo: Path, cli: Cli, text: str) -> None:
    (env_repo / "environments" / "dev.yaml").write_text(text)
    result = cli("--repo", env_repo, "validate", "dev")
    assert result.status == 1
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("environments/dev.yaml")
