"""checkov over modules/ and bootstrap/: no failed check, and every skip is an inline, justified one.

checkov pins dependencies (an old `packaging`, among others) that would break this
project's test tools, so it runs from its own virtual environment, .cache/checkov-venv,
created on first use (pip install from PyPI) and reused after. Without network on first
use the test skips with the reason, except on CI (CI=true), where it fails.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "modules"
BOOTSTRAP = ROOT / "bootstrap"
CHECKED = [MODULES, BOOTSTRAP]
VENV = ROOT / ".cache" / "checkov-venv"
CHECKOV = VENV / "bin" / "checkov"
REQUIREMENT = "checkov>=3.2,<4"
# An inline skip must say why: #checkov:skip=CKV_GCP_NN:reason in words
SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(:(.*))?")


def _ensure_checkov() -> Path:
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with (VENV.parent / "checkov-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder when several test runs start at once
        if CHECKOV.exists():
            return CHECKOV
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        pip = subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", REQUIREMENT],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if pip.returncode != 0 or not CHECKOV.exists():
            detail = (pip.stderr or pip.stdout).strip().splitlines()[-3:]
            message = f"cannot install {REQUIREMENT} into {VENV}: {' '.join(detail)}"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
    return CHECKOV


def test_inline_skips_are_justified() -> None:
    for tf in [tf for folder in CHECKED for tf in folder.rglob("*.tf")]:
        for number, line in enumerate(tf.read_text().splitlines(), 1):
            match = SKIP.search(line)
            if match:
                reason = (match.group(3) or "").strip()
                assert len(reason) >= 10, f"{tf}:{number}: checkov skip without a reason"


@pytest.mark.parametrize("folder", CHECKED, ids=lambda p: p.name)
def test_checkov_passes(folder: Path) -> None:
    """One run per folder: given two --directory options, checkov 3.3 scans the first
    twice and reports nothing of the second."""
    checkov = _ensure_checkov()
    env = {**os.environ, "LOG_LEVEL": "ERROR", "PYTHONWARNINGS": "ignore"}
    env.pop("BC_API_KEY", None)  # never talk to the Prisma platform
    result = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(folder),
            "--framework",
            "terraform",
            "--skip-download",
            "--compact",
            "--quiet",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"checkov gave no JSON (exit {result.returncode}): {result.stderr[-2000:]}")
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for r in reports
        for c in r["results"].get("failed_checks", [])
    ]
    assert not failed, "checkov failed:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 0  # it really looked at the folder
    for r in reports:
        for skipped in r["results"].get("skipped_checks", []):
            comment = (skipped.get("check_result") or {}).get("suppress_comment", "")
            assert len(comment.strip()) >= 10, f"{skipped['check_id']} skipped without a reason"
    assert sys.executable  # the project venv is untouched: checkov ran from its own
