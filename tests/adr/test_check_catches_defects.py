"""Break a temporary copy of docs/adr one way at a time; the check must name the file, the
line and the defect, and the command must exit non-zero."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAIN = "0005-tag-images-with-the-git-sha-and-pin-digests.md"
OLD = "0002-keep-the-pipeline-private-with-iam-only.md"
NEW = "0003-keep-the-pipeline-internal-with-internal-ingress-and-vpc-egress.md"

Edit = Callable[[Path], None]


def rewrite(name: str, old: str, new: str, count: int = 1) -> Edit:
    def edit(adr_dir: Path) -> None:
        path = adr_dir / name
        text = path.read_text(encoding="utf-8")
        assert old in text, f"fixture drifted: {old!r} not in {name}"
        path.write_text(text.replace(old, new, count), encoding="utf-8")

    return edit


def drop_section(name: str, heading: str) -> Edit:
    def edit(adr_dir: Path) -> None:
        path = adr_dir / name
        text = path.read_text(encoding="utf-8")
        pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## )", re.S | re.M)
        assert pattern.search(text)
        path.write_text(pattern.sub("", text, count=1), encoding="utf-8")

    return edit


def remove_index_row(name: str) -> Edit:
    def edit(adr_dir: Path) -> None:
        index = adr_dir / "README.md"
        lines = index.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith(f"| {name[:4]} |")]
        assert len(kept) == len(lines) - 1
        index.write_text("".join(kept), encoding="utf-8")

    return edit


def rename(name: str, new_name: str) -> Edit:
    def edit(adr_dir: Path) -> None:
        (adr_dir / name).rename(adr_dir / new_name)

    return edit


def add_file(name: str, text: str) -> Edit:
    def edit(adr_dir: Path) -> None:
        (adr_dir / name).write_text(text, encoding="utf-8")

    return edit


DEFECTS: dict[str, tuple[Edit, str, str]] = {
    # id: (edit, file the problem is reported in, expected message fragment)
    "missing section": (
        drop_section(PLAIN, "## Decision Drivers"),
        PLAIN,
        "missing section '## Decision Drivers'",
    ),
    "missing subsection": (
        rewrite(PLAIN, "### Confirmation", "### Checks"),
        PLAIN,
        "missing '### Confirmation'",
    ),
    "sections out of order": (
        rewrite(PLAIN, "## More Information", "## Decision Drivers"),
        PLAIN,
        "appears twice",
    ),
    "unexpected section": (
        rewrite(PLAIN, "## More Information", "## Links"),
        PLAIN,
        "unexpected section 'Links'",
    ),
    "bad status": (
        rewrite(PLAIN, "status: accepted", "status: approved"),
        PLAIN,
        "status 'approved' is not one of",
    ),
    "bad date": (
        rewrite(PLAIN, "date: 2026-11-24", "date: 2026-13-01"),
        PLAIN,
        "is not a YYYY-MM-DD date",
    ),
    "no status": (rewrite(PLAIN, "status: accepted\n", ""), PLAIN, "front matter has no 'status'"),
    "no front matter": (
        rewrite(PLAIN, "---\nstatus: accepted\ndate: 2026-11-24\n---\n", ""),
        PLAIN,
        "no YAML front matter",
    ),
    "unknown front matter key": (
        rewrite(PLAIN, "status: accepted", "status: accepted\nowner: me"),
        PLAIN,
        "unknown front matter key 'owner'",
    ),
    "broken link to an ADR": (rewrite(PLAIN, "](0008-", "](0099-"), PLAIN, "broken link '0099-"),
    "broken link into the repo": (
        rewrite(PLAIN, "## More Information\n", "## More Information\n\n[x](../../nope.txt)\n"),
        PLAIN,
        "broken link '../../nope.txt'",
    ),
    "broken anchor": (
        rewrite(PLAIN, "## More Information\n", "## More Information\n\n[x](#nowhere)\n"),
        PLAIN,
        "no heading with anchor #nowhere",
    ),
    "link leaving the repo": (
        rewrite(PLAIN, "## More Information\n", "## More Information\n\n[x](../../../../etc)\n"),
        PLAIN,
        "leaves the repository",
    ),
    "absolute link": (
        rewrite(PLAIN, "## More Information\n", "## More Information\n\n[x](/etc/passwd)\n"),
        PLAIN,
        "is absolute",
    ),
    "missing index entry": (remove_index_row(PLAIN), "README.md", f"{PLAIN} has no entry"),
    "index lists a missing record": (
        rename(PLAIN, "0005-renamed-on-disk.md"),
        "README.md",
        f"index lists {PLAIN}, which is not an ADR",
    ),
    "stale index": (
        rewrite(PLAIN, "date: 2026-11-24", "date: 2026-11-23"),
        "README.md",
        "index is not what 'python tools/adr.py index' generates",
    ),
    "superseded without successor": (
        rewrite(PLAIN, "status: accepted", "status: superseded"),
        PLAIN,
        "names no successor",
    ),
    "successor that does not exist": (
        rewrite(OLD, f"superseded-by: {NEW}", "superseded-by: 0042-nothing.md"),
        OLD,
        "superseded-by '0042-nothing.md' is not an ADR",
    ),
    "successor that does not name it back": (
        rewrite(NEW, f"supersedes: {OLD}\n", ""),
        NEW,
        "'supersedes:' does not name it",
    ),
    "superseded record without a link to its successor": (
        rewrite(OLD, f"]({NEW})", "](0001-two-services-with-grpc-between-them.md)", count=2),
        OLD,
        f"does not link to its successor {NEW}",
    ),
    "successor without a link back": (
        rewrite(NEW, f"]({OLD})", "](0001-two-services-with-grpc-between-them.md)", count=4),
        NEW,
        f"supersedes {OLD} but does not link to it",
    ),
    "supersedes a record that is not superseded": (
        rewrite(NEW, f"supersedes: {OLD}", f"supersedes: {OLD}, {PLAIN}"),
        PLAIN,
        "supersedes this record: set 'status: superseded'",
    ),
    "context without a question": (
        rewrite(PLAIN, "can be traced to a commit?", "can be traced to a commit."),
        PLAIN,
        "must end with the question",
    ),
    "chosen option that was not considered": (
        rewrite(
            PLAIN,
            'Chosen option: "Git SHA tag plus digest pin"',
            'Chosen option: "Build on a Friday"',
        ),
        PLAIN,
        "chosen option 'Build on a Friday' is not one of the Considered Options",
    ),
    "no chosen option": (
        rewrite(
            PLAIN,
            'Chosen option: "Git SHA tag plus digest pin", because',
            "We picked the first, because",
        ),
        PLAIN,
        "no 'Chosen option:",
    ),
    "option without pros and cons": (
        rewrite(PLAIN, "### Semantic version tags", "### Semver"),
        PLAIN,
        "option 'Semantic version tags' has no '### Semantic version tags'",
    ),
    "option without a downside": (
        rewrite(
            PLAIN, "* Bad, because digests are opaque", "* Neutral, because digests are opaque"
        ),
        PLAIN,
        "has no '* Bad, because …' line",
    ),
    "title that does not match the file name": (
        rewrite(PLAIN, "# Tag images with the git SHA and pin digests", "# Tag images by SHA"),
        PLAIN,
        "does not match the file name",
    ),
    "placeholder left in an accepted record": (
        rewrite(PLAIN, "## More Information\n", "## More Information\n\nTODO: fill in\n"),
        PLAIN,
        "template placeholder 'TODO' left in a record with status accepted",
    ),
    "duplicate number": (
        rename(PLAIN, "0004-tag-images-with-the-git-sha-and-pin-digests.md"),
        "",
        "is also used by",
    ),
    "not an ADR file name": (add_file("notes.md", "# Notes\n"), "notes.md", "not an ADR file name"),
    "two titles": (
        rewrite(PLAIN, "## More Information\n", "# Another title\n\n## More Information\n"),
        PLAIN,
        "a second '# ' heading",
    ),
    "template missing a section": (
        rewrite("template.md", "## Decision Drivers", "## Drivers"),
        "template.md",
        "missing section '## Decision Drivers'",
    ),
}
# Every Bad point of the Consequences list turned Neutral (the options keep theirs).
DEFECTS["consequences without a bad one"] = (
    lambda d: _neutralise_bad_consequences(d / PLAIN),
    PLAIN,
    "'### Consequences' has no '* Bad, because …' line",
)


def _neutralise_bad_consequences(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    head, rest = text.split("### Consequences\n", 1)
    consequences, tail = rest.split("### Confirmation\n", 1)
    consequences = consequences.replace("* Bad, because", "* Neutral, because")
    path.write_text(f"{head}### Consequences\n{consequences}### Confirmation\n{tail}", "utf-8")


def test_the_unbroken_copy_passes(problems: Callable[[], list[str]]) -> None:
    assert problems() == []


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_defect_is_caught(defect: str, adr_dir: Path, problems: Callable[[], list[str]]) -> None:
    edit, filename, fragment = DEFECTS[defect]
    edit(adr_dir)
    found = problems()
    matching = [p for p in found if fragment in p and p.startswith(filename)]
    assert matching, f"{defect}: expected {filename}:…{fragment!r}, got:\n" + "\n".join(found)
    assert all(re.match(r"^[^:]+:\d+: ", p) for p in found)


def test_check_command_reports_file_and_line_and_fails(adr_dir: Path, repo_copy: Path) -> None:
    drop_section(PLAIN, "## Decision Drivers")(adr_dir)
    rewrite(PLAIN, "status: accepted", "status: approved")(adr_dir)
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "adr.py"),
            "--dir",
            str(adr_dir),
            "--root",
            str(repo_copy),
            "check",
        ],
        cwd=repo_copy,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"docs/adr/{PLAIN}:2: status 'approved'" in result.stderr
    assert "missing section '## Decision Drivers'" in result.stderr
    assert re.search(r"problem\(s\) in", result.stderr)
