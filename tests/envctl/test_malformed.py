"""Malformed input never produces a traceback: only EnvctlError, whose lines each name the
file (and a field), and through the CLI exit status 1 with those lines on stderr."""

from __future__ import annotations

import time
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


# --- hostile files (issue 17, rows 12 and 15): refused fast, with a line, values cut short --
STAGING = "environments/staging.yaml"
FAST = 5.0  # seconds; before the caps these ran for minutes


def _staging(repo: Path) -> Path:
    return repo / "environments" / "staging.yaml"


def _one_line(result: Any) -> str:
    assert result.status == 1, result.err
    assert "Traceback" not in result.err
    assert "internal error" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, lines[:3]
    return str(lines[0])


def _laughs(levels: int = 10) -> str:
    lines = ["lol0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"lol{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("command", ["validate", "render"])
def test_billion_laughs_is_refused_fast_at_the_alias(
    env_repo: Path, cli: Cli, command: str
) -> None:
    staging = _staging(env_repo)
    lines_before = staging.read_text().count("\n")
    staging.write_text(staging.read_text() + _laughs())
    started = time.monotonic()
    line = _one_line(cli("--repo", env_repo, command, "staging"))
    assert time.monotonic() - started < FAST
    # a0 is 11 values, a1 111, a2 1,111, a3 11,111: an *a2 inside a3 passes 5,000
    where = lines_before + 4
    assert line.startswith(f"{STAGING}:{where}: (document): alias *a2 ")
    assert "more than 5,000 values" in line


def test_an_alias_inside_its_own_anchor_is_refused(env_repo: Path, cli: Cli) -> None:
    staging = _staging(env_repo)
    text = staging.read_text().replace("invokers: []", "invokers: &loop [*loop]", 1)
    staging.write_text(text)
    line = _one_line(cli("--repo", env_repo, "validate", "staging"))
    assert line.startswith(f"{STAGING}:19: (document): alias *loop is inside its own anchor")


def test_a_file_over_one_mebibyte_is_refused_before_parsing(env_repo: Path, cli: Cli) -> None:
    staging = _staging(env_repo)
    base = staging.read_text()
    staging.write_text(base + "".join(f"k{i}: {i}\n" for i in range(200_000)))
    started = time.monotonic()
    line = _one_line(cli("--repo", env_repo, "validate", "staging"))
    assert time.monotonic() - started < FAST
    # the line on which the file passes 1 MiB
    cut = (base + "".join(f"k{i}: {i}\n" for i in range(200_000))).encode()[: 1 << 20]
    assert line.startswith(f"{STAGING}:{cut.count(b'\n') + 1}: (document): ")
    assert "more than 1 MiB (1,048,576 bytes)" in line


def test_many_small_keys_under_the_size_cap_are_refused_fast(env_repo: Path, cli: Cli) -> None:
    staging = _staging(env_repo)
    base = staging.read_text()
    staging.write_text(base + "".join(f"k{i}: {i}\n" for i in range(70_000)))
    assert staging.stat().st_size < 1 << 20
    started = time.monotonic()
    line = _one_line(cli("--repo", env_repo, "validate", "staging"))
    assert time.monotonic() - started < FAST
    assert line.startswith(f"{STAGING}:"), line
    assert "more than 5,000 values" in line


def test_merge_keys_are_refused(env_repo: Path, cli: Cli) -> None:
    staging = _staging(env_repo)
    text = staging.read_text()
    text = text.replace(
        "    scaling:\n      min_instances: 0  #",
        "    scaling: &scale\n      min_instances: 0  #",
        1,
    )
    text = text.replace(
        "    scaling:\n      min_instances: 0\n      max_instances: 3  # a handful of staff rehearsing releases\n",
        "    scaling:\n      <<: *scale\n",
        1,
    )
    assert "<<: *scale" in text
    staging.write_text(text)
    line = _one_line(cli("--repo", env_repo, "validate", "staging"))
    merge_line = text.splitlines().index("      <<: *scale") + 1
    assert line.startswith(f"{STAGING}:{merge_line}: (document): merge keys (<<) are not allowed")


@pytest.mark.parametrize(
    ("inserted", "reason"),
    [("a\x00b", "#x0000"), ("a\x1bb", "#x001b")],
    ids=["nul", "esc"],
)
def test_control_characters_are_reported_on_their_line(
    env_repo: Path, cli: Cli, inserted: str, reason: str
) -> None:
    staging = _staging(env_repo)
    text = staging.read_text().replace(
        "PIPELINE_NAME: metro_schedule", f"PIPELINE_NAME: {inserted}"
    )
    staging.write_text(text)
    line = _one_line(cli("--repo", env_repo, "validate", "staging"))
    where = text.splitlines().index(f"      PIPELINE_NAME: {inserted}") + 1
    assert line.startswith(f"{STAGING}:{where}: (document): not valid YAML: "), line
    assert reason in line


def test_non_utf8_bytes_are_reported_on_their_line(env_repo: Path, cli: Cli) -> None:
    staging = _staging(env_repo)
    raw = staging.read_bytes().replace(b"metro_schedule", b"metro_\xff\xfeschedule")
    staging.write_bytes(raw)
    line = _one_line(cli("--repo", env_repo, "validate", "staging"))
    where = raw[: raw.index(b"\xff")].count(b"\n") + 1
    assert line.startswith(f"{STAGING}:{where}: not UTF-8 text"), line


def test_a_huge_integer_is_reported_on_its_line(env_repo: Path, cli: Cli) -> None:
    staging = _staging(env_repo)
    text = staging.read_text().replace("concurrency: 4", "concurrency: " + "9" * 5000, 1)
    staging.write_text(text)
    line = _one_line(cli("--repo", env_repo, "validate", "staging"))
    where = text.splitlines().index("    concurrency: " + "9" * 5000) + 1
    assert line.startswith(f"{STAGING}:{where}: "), line[:200]
    assert len(line) < 400


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("region: europe-west1", "region: " + "a" * 500_000),
        ("max_instances: 3", "max_instances: " + "9" * 3000),
        ("PIPELINE_NAME: metro_schedule", "PIPELINE_NAME: " + "x" * 200_000 + ":latest"),
        ("freeze: []", "freeze: []\n" + "k" * 100_000 + ": 1"),
        ("freeze: []", "freeze: []\nzz: " + "b" * 100_000 + "\nzz: 1"),
    ],
    ids=["long-string", "long-integer", "long-env-value", "long-key", "duplicate-key"],
)
def test_values_quoted_in_messages_are_cut_short(
    env_repo: Path, cli: Cli, old: str, new: str
) -> None:
    staging = _staging(env_repo)
    staging.write_text(staging.read_text().replace(old, new, 1))
    for argv in (("validate", "staging"), ("--json", "validate", "staging")):
        result = cli("--repo", env_repo, *argv)
        line = _one_line(result)
        assert line.startswith(f"{STAGING}:"), line[:200]
        assert len(line) < 400, line[:400]
        assert len(result.out) < 2000


def test_history_skips_an_old_version_that_is_not_utf8(
    env_repo: Path, cli: Cli, run_git: Callable[..., str]
) -> None:
    staging = _staging(env_repo)
    good = staging.read_bytes()
    staging.write_bytes(good.replace(b"metro_schedule", b"metro_\xffschedule"))
    run_git(env_repo, "commit", "--quiet", "-am", "a broken version")
    staging.write_bytes(good)
    run_git(env_repo, "commit", "--quiet", "-am", "fixed")
    result = cli("--repo", env_repo, "history", "staging")
    assert result.status == 0, result.err
    diff = cli("--repo", env_repo, "diff", "staging", "--base", "HEAD~1")
    line = _one_line(diff)
    assert line.startswith(f"HEAD~1:{STAGING}:"), line
    assert "not UTF-8 text" in line
