"""The bench's pull request comment: the ratio table against the baseline.

One comment per pull request, found again by a hidden marker and edited in
place on every push (envctl.ci.github's `upsert_comment`, the same as the plan
comments), so a PR carries the latest run's verdicts and never a pile of them.
"""

from __future__ import annotations

from typing import Any

from bench.ratios import Verdict

MARKER = "<!-- bench:ratios -->"
ICONS = {"regressed": "❌", "improved": "✅", "ok": "", "missing": "⚪", "new": "🆕"}


def body(
    verdicts: list[Verdict],
    threshold: float,
    current: dict[str, Any],
    baseline: dict[str, Any],
    run_url: str | None = None,
    parameter_warnings: list[str] | None = None,
) -> str:
    bad = [v for v in verdicts if v.status == "regressed"]
    verdict = (
        f"**{len(bad)} of {len(verdicts)} gated ratios regressed** by more than "
        f"+{threshold:.0%}: the check fails."
        if bad
        else f"No gated ratio regressed by more than +{threshold:.0%}."
    )
    lines = [
        MARKER,
        f"## Bench at `{str(current.get('commit', '?'))[:12]}`",
        "",
        f"Quick profile against the committed baseline `{str(baseline.get('tag', '?'))[:12]}` "
        f"({baseline.get('created', '?')}). Ratios divide by a floor measured in the same "
        "run, so they compare across machines; higher is worse. " + verdict,
        "",
        "| ratio | baseline | this PR | change | |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for v in verdicts:
        base = f"{v.baseline:.3f}" if v.baseline is not None else "-"
        cur = f"{v.current:.3f}" if v.current is not None else "-"
        change = f"{v.change:+.0%}" if v.change is not None else "-"
        lines.append(f"| `{v.name}` | {base} | {cur} | {change} | {ICONS[v.status]} {v.status} |")
    capacity = current.get("capacity") or {}
    if capacity.get("targets"):
        knees = ", ".join(
            f"{name} {t['knee_rps']:g}/s{' (lower bound)' if t['knee_is_lower_bound'] else ''}"
            for name, t in capacity["targets"].items()
        )
        lines += ["", f"Capacity knees (not gated: steps are ×{capacity['plan']['factor']:g} "
                  f"apart): {knees}."]  # fmt: skip
    m = current.get("machine") or {}
    lines += [
        "",
        f"Runner: {m.get('cpu_model', '?')}, {m.get('usable_cpus', '?')} CPUs, load average "
        f"{' / '.join(str(x) for x in m.get('load_average_1_5_15', []))} at start.",
    ]
    if parameter_warnings:
        lines += [
            "",
            "<details><summary>Parameters that differ from the baseline's</summary>",
            "",
            *[f"- `{w}`" for w in parameter_warnings],
            "",
            "</details>",
        ]
    if run_url:
        lines += ["", f"Report and charts: the `bench-report` artifact of [this run]({run_url})."]
    return "\n".join(lines) + "\n"
