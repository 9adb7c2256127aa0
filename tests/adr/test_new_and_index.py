"""`new` takes the next number from the template and refreshes the index; `index` is
idempotent; `--supersedes` links a replacement both ways."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def highest(adr_dir: Path) -> int:
    return max(int(p.name[:4]) for p in adr_dir.glob("[0-9][0-9][0-9][0-9]-*.md"))


def test_new_creates_the_next_number_and_updates_the_index(
    adr: ModuleType, adr_dir: Path, problems: Callable[[], list[str]]
) -> None:
    before = highest(adr_dir)
    path = adr.new(adr_dir, "Use  gRPC + TLS for the Console's calls")
    assert path.name == f"{before + 1:04d}-use-grpc-tls-for-the-console-s-calls.md"
    text = path.read_text(encoding="utf-8")
    assert "status: proposed" in text
    assert f"date: {dt.date.today().isoformat()}" in text
    assert "\n# Use gRPC + TLS for the Console's calls\n" in text
    index = (adr_dir / "README.md").read_text(encoding="utf-8")
    assert (
        f"| {before + 1:04d} | [Use gRPC + TLS for the Console's calls]({path.name}) | proposed |"
        in index
    )
    # A fresh record from the template is structurally valid (placeholders are allowed
    # while it is proposed) and the index is current.
    assert problems() == []


def test_a_new_record_cannot_be_accepted_with_placeholders(
    adr: ModuleType, adr_dir: Path, problems: Callable[[], list[str]]
) -> None:
    path = adr.new(adr_dir, "Accept too early")
    path.write_text(
        path.read_text("utf-8").replace("status: proposed", "status: accepted"), "utf-8"
    )
    adr.write_index(adr_dir)
    assert any("template placeholder 'TODO'" in p for p in problems())


def test_new_command_line(adr_dir: Path, repo_copy: Path) -> None:
    before = highest(adr_dir)
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "adr.py"),
            "--dir",
            str(adr_dir),
            "new",
            "Cache GTFS feeds",
        ],
        cwd=repo_copy,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    created = f"{before + 1:04d}-cache-gtfs-feeds.md"
    assert created in result.stdout
    assert (adr_dir / created).is_file()
    check = subprocess.run(
        [sys.executable, str(REPO / "tools" / "adr.py"), "--dir", str(adr_dir), "check"],
        cwd=repo_copy,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_new_in_an_empty_folder_starts_at_0000(adr: ModuleType, tmp_path: Path) -> None:
    adr_dir = tmp_path / "docs" / "adr"
    adr_dir.mkdir(parents=True)
    shutil.copy(REPO / "docs" / "adr" / "template.md", adr_dir / "template.md")
    first = adr.new(adr_dir, "First decision")
    second = adr.new(adr_dir, "Second decision")
    assert [first.name, second.name] == ["0000-first-decision.md", "0001-second-decision.md"]
    assert adr.check(adr_dir, tmp_path) == []


def test_new_refuses_a_title_without_letters(adr: ModuleType, adr_dir: Path) -> None:
    with pytest.raises(SystemExit, match="no letters or digits"):
        adr.new(adr_dir, " -- ")


def test_new_never_overwrites(adr: ModuleType, adr_dir: Path) -> None:
    # Same number twice is impossible through `new`; a file in the way is refused.
    nxt = highest(adr_dir) + 1
    (adr_dir / f"{nxt:04d}-taken.md").write_text("x", encoding="utf-8")
    created = adr.new(adr_dir, "Taken")
    assert created.name == f"{nxt + 1:04d}-taken.md"


def test_new_supersedes_links_both_ways(
    adr: ModuleType, adr_dir: Path, problems: Callable[[], list[str]]
) -> None:
    old = adr_dir / "0007-use-opentofu-rather-than-terraform.md"
    new = adr.new(adr_dir, "Use Terraform again", supersedes="7")
    old_text, new_text = old.read_text("utf-8"), new.read_text("utf-8")
    assert "status: superseded" in old_text
    assert f"superseded-by: {new.name}" in old_text
    assert f"]({new.name})" in old_text
    assert f"supersedes: {old.name}" in new_text
    assert f"]({old.name})" in new_text
    # each note sits right under its title, after the front matter
    assert re.search(r"\n# Use OpenTofu rather than Terraform\n\n> Superseded by \[", old_text)
    assert re.search(r"\n# Use Terraform again\n\n> Supersedes \[0007 ", new_text)
    assert old_text.index("superseded-by:") < old_text.index("\n---\n", 4)
    index = (adr_dir / "README.md").read_text("utf-8")
    assert f"| superseded by [{new.name[:4]}]({new.name}) |" in index
    assert problems() == []


def test_new_supersedes_an_unknown_number(adr: ModuleType, adr_dir: Path) -> None:
    before = sorted(adr_dir.iterdir())
    with pytest.raises(SystemExit, match="no single ADR"):
        adr.new(adr_dir, "Replace nothing", supersedes="0999")
    assert sorted(adr_dir.iterdir()) == before


def test_new_refuses_to_supersede_twice(adr: ModuleType, adr_dir: Path) -> None:
    before = sorted(adr_dir.iterdir())
    with pytest.raises(SystemExit, match="already superseded"):
        adr.new(adr_dir, "Replace 0002 again", supersedes="0002")
    assert sorted(adr_dir.iterdir()) == before


def test_index_is_idempotent(adr: ModuleType, adr_dir: Path) -> None:
    index = adr_dir / "README.md"
    before = index.read_text("utf-8")
    adr.write_index(adr_dir)
    assert index.read_text("utf-8") == before


def test_index_command_repairs_a_stale_index(
    adr_dir: Path, repo_copy: Path, problems: Callable[[], list[str]]
) -> None:
    (adr_dir / "README.md").write_text("hand edited\n", encoding="utf-8")
    assert problems()
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "adr.py"), "--dir", str(adr_dir), "index"],
        cwd=repo_copy,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert problems() == []


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Use OpenTofu rather than Terraform", "use-opentofu-rather-than-terraform"),
        ("Observe with logs, traces & metrics", "observe-with-logs-traces-metrics"),
        ("  Café   déjà vu  ", "cafe-deja-vu"),
        ("gRPC: HTTP/2 end-to-end", "grpc-http-2-end-to-end"),
    ],
)
def test_slugify(adr: ModuleType, title: str, slug: str) -> None:
    assert adr.slugify(title) == slug
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug)


def test_makefile_target_calls_new() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert 'tools/adr.py new "$(TITLE)"' in makefile
