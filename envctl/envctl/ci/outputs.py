"""Step outputs and job summaries for GitHub Actions (plain files named by env vars)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

OUTPUT_VARIABLE = "GITHUB_OUTPUT"
SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"


def set_output(name: str, value: str) -> None:
    """Append ``name=value`` to $GITHUB_OUTPUT (no-op outside Actions).

    Multi-line values use the heredoc form with a random delimiter, so a value can never
    end the block early and inject another output.
    """
    path = os.environ.get(OUTPUT_VARIABLE)
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as out:
        if "\n" in value or "\r" in value:
            delimiter = f"EOF_{secrets.token_hex(8)}"
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            out.write(f"{name}={value}\n")


def add_summary(markdown: str) -> None:
    """Append markdown to the job summary page (no-op outside Actions)."""
    path = os.environ.get(SUMMARY_VARIABLE)
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(markdown if markdown.endswith("\n") else markdown + "\n")
