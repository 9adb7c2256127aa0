"""The capacity section of report.md and its latency-versus-load chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CAPACITY_PNG = "latency-vs-load.png"

TARGET_NAMES = {
    "bare": "bare grpcio server, health Check (the floor)",
    "pipeline": "pipeline GetDag",
    "console": "console GET /api/dag (→ GetDag)",
}


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def markdown(section: dict[str, Any]) -> list[str]:
    plan = section["plan"]
    out = [
        f"## Capacity (open-loop steps of {plan['seconds']:g} s after {plan['warmup_s']:g} s, "
        f"×{plan['factor']:g} from {plan['start_rps']:g}/s)",
        "",
        f"A step holds when p99 ≤ the SLO (gRPC {plan['grpc_slo_ms']:g} ms, HTTP "
        f"{plan['http_slo_ms']:g} ms), errors ≤ {plan['max_error_rate']:.1%} and at least "
        f"{plan['min_achieved']:.0%} of the offered rate completed; the knee is the highest "
        "offered rate held by it and every step below. Latency is from each call's intended "
        "send time (open loop). Placement: "
        f"{section['placement']}; {plan['processes']} Locust process(es). A step is "
        f"generator-bound (⚠) when a Locust process used more than "
        f"{section['generator_bound_cpu']:.0%} of a core.",
        "",
    ]
    rows = []
    for key, target in section["targets"].items():
        bound = " (lower bound)" if target["knee_is_lower_bound"] else ""
        rows.append(
            f"| {TARGET_NAMES.get(key, key)} | {target['knee_rps']:g}/s{bound} | "
            f"{target['slo_us'] / 1000:g} ms | {len(target['steps'])} |"
        )
    out += ["| target | knee | SLO | steps |", "| --- | ---: | ---: | ---: |", *rows, ""]
    ratios = []
    if section.get("pipeline_over_bare") is not None:
        ratios.append(f"pipeline ÷ bare capacity **{section['pipeline_over_bare']:.2f}**")
    if section.get("console_over_pipeline") is not None:
        ratios.append(f"console ÷ pipeline capacity **{section['console_over_pipeline']:.2f}**")
    if ratios:
        out += ["; ".join(ratios) + ".", ""]
    for key, target in section["targets"].items():
        out += [f"### {TARGET_NAMES.get(key, key)}", ""]
        out += [
            "| offered/s | achieved/s | users | p50 ms | p90 ms | p99 ms | max ms | errors "
            "| generator CPU | late starts | holds |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for s in target["steps"]:
            lat = s["latency_us"]
            cpu = max(s["generator_cpu"], default=0.0)
            warn = " ⚠" if s["generator_bound"] else ""
            verdict = "yes" if s["holds"] else f"no: {s['why']}"
            out.append(
                f"| {s['offered_rps']:g} | {s['achieved_rps']:g} | {s['users']} | "
                f"{_ms(lat.get('p50', 0))} | {_ms(lat.get('p90', 0))} | {_ms(lat.get('p99', 0))} | "
                f"{_ms(lat.get('max', 0))} | {s['error_rate']:.2%} | {cpu:.0%}{warn} | "
                f"{s['late_starts']} | {verdict} |"
            )
        out.append("")
    out += [f"![latency versus offered load]({CAPACITY_PNG})", ""]
    return out


def chart(folder: Path, section: dict[str, Any], tag: str) -> Path:
    """p50 (solid) and p99 (dashed) against the offered rate, log-log, one colour
    per target; its SLO as a dotted line, its knee circled, generator-bound steps
    as hollow markers."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    fig, ax = plt.subplots(figsize=(12, 5.2), constrained_layout=True)
    colours = {"bare": "tab:grey", "pipeline": "tab:blue", "console": "tab:orange"}
    for key, target in section["targets"].items():
        steps = target["steps"]
        if not steps:
            continue
        colour = colours.get(key, "tab:green")
        xs = [s["offered_rps"] for s in steps]
        p50 = [max(s["latency_us"].get("p50", 0), 1) / 1000 for s in steps]
        p99 = [max(s["latency_us"].get("p99", 0), 1) / 1000 for s in steps]
        label = TARGET_NAMES.get(key, key)
        # Markers on both lines: a target that broke at its first step is one point.
        ax.plot(xs, p50, "-", marker=".", color=colour, label=f"{label} p50")
        ax.plot(xs, p99, "--", color=colour, label=f"{label} p99")
        for x, y, s in zip(xs, p99, steps, strict=True):
            ax.plot(
                [x], [y], "o", color=colour,
                markerfacecolor="none" if s["generator_bound"] else colour,
            )  # fmt: skip
        ax.axhline(target["slo_us"] / 1000, color=colour, linestyle=":", linewidth=1)
        if target["knee_rps"]:
            knee = next(s for s in steps if s["offered_rps"] == target["knee_rps"])
            ax.plot(
                [knee["offered_rps"]], [max(knee["latency_us"].get("p99", 0), 1) / 1000],
                "o", markersize=14, markerfacecolor="none", color=colour,
            )  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    # Plain numbers (50, 100, 200; 0.5, 1, 2, 5) rather than 5 x 10^1.
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        axis.set_minor_formatter(FuncFormatter(lambda _v, _pos: ""))
    ax.set_xlabel("offered calls per second (open loop)")
    ax.set_ylabel("latency from intended send, ms")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(
        f"Capacity — {tag}: p50 solid, p99 dashed, SLO dotted, knee circled, "
        "hollow = generator-bound",
        fontsize=9,
    )
    path = folder / CAPACITY_PNG
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
