"""A result folder: `report.json` (the record), `report.md` and two PNG charts.

Layout of `bench/results/<tag>/`::

    report.json                  machine, images, Locust version, parameters,
                                 cold samples, warm per-RPC stats, floor, large
                                 feed, run store, ratios — everything `compare` reads
    report.md                    the same as tables, for people
    latency-cold-vs-warm.png     CDFs: cold first calls vs warm calls
    over-time.png                p50/p99 and calls/s per second of the load phase
    latency-vs-load.png          capacity: p50/p99 against the offered rate per target
    raw/floor.json               floor loop histograms (µs)
    raw/run_store.json           run store loop histograms (µs), per call and store
    raw/warm/, raw/calibration/  Locust's CSVs and log, and the locustfile's
                                 per-process histogram files (hist-*.json)
    raw/capacity/<target>/step-NN/  each capacity step's Locust log and per-process
                                 result files (cap-*.json)

`render(folder)` rebuilds report.md and the charts from report.json and raw/,
so a report can be re-drawn (`python -m bench report DIR`) without re-running.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import capacity_report, ratios
from bench.cold import METRICS
from bench.histogram import REPORTED_PERCENTILES, Histogram, percentile_key, sample_summary
from bench.recorder import Recorder, load_dir

SCHEMA = 1
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CDF_PNG = "latency-cold-vs-warm.png"
TIMELINE_PNG = "over-time.png"


# --- numbers -----------------------------------------------------------------


def cold_section(samples: list[dict[str, Any]]) -> dict[str, Any]:
    summary = {}
    for key, unit, what in METRICS:
        values = [float(s[key]) for s in samples]
        summary[key] = {"unit": unit, "what": what, **sample_summary(values)}
    return {"samples": samples, "summary": summary}


def _locust_entry(
    entries: list[dict[str, Any]], name: str, window_s: float
) -> dict[str, Any] | None:
    """Locust's own numbers for one name, from its final stats (locust.json)."""
    e = next((e for e in entries if e.get("name") == name), None)
    if e is None:
        return None
    requests = int(e["num_requests"])
    return {
        "requests": requests,
        "failures": int(e["num_failures"]),
        # Over the whole window (Locust's stats were reset when it opened), not
        # first-to-last request, which flatters a rare call such as RunPipeline.
        "rps": round(requests / window_s, 2) if window_s > 0 else 0.0,
        # Locust's whole-millisecond view, for comparison with ours.
        "avg_ms": round(float(e["total_response_time"]) / requests, 3) if requests else 0.0,
        "max_ms": round(float(e["max_response_time"] or 0), 3),
    }


def warm_section(recorder: Recorder, locust_stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Per RPC: latency from our histograms, throughput and errors also from Locust."""
    window = recorder.window_seconds
    rpcs = {}
    for name, stats in sorted(recorder.methods.items()):
        locust = _locust_entry(locust_stats, name, window)
        calls = stats.calls
        own_rps = calls / window if window else 0.0
        rpcs[name] = {
            "kind": stats.kind,
            "calls": calls,
            "errors": sum(stats.errors.values()),
            "error_codes": dict(sorted(stats.errors.items())),
            "warmup_calls": stats.warmup_calls,
            # Locust's count of the same window, when it has one; ours otherwise.
            "rps": locust["rps"] if locust else round(own_rps, 2),
            "rps_from_histogram": round(own_rps, 2),
            "latency_us": stats.histogram.summary(),
            "locust": locust,
        }
    return {"window_s": round(window, 3), "rpcs": rpcs}


def assemble(
    *,
    meta: dict[str, Any],
    machine: dict[str, Any],
    images: dict[str, Any] | None,
    locust_version: str,
    parameters: dict[str, Any],
    cold_samples: list[dict[str, Any]] | None,
    warm: dict[str, Any] | None,
    floor: dict[str, Histogram] | None,
    calibration: Recorder | None,
    large_feed: dict[str, Any] | None,
    run_store: dict[str, Any] | None = None,
    capacity: dict[str, Any] | None = None,
    cloud_cold: dict[str, Any] | None = None,
) -> dict[str, Any]:
    floor_json: dict[str, Any] | None = None
    if floor is not None:
        floor_json = {name: h.summary() for name, h in floor.items()}
        if calibration is not None and "GetDag" in calibration.methods:
            floor_json["locust_get_dag"] = calibration.methods["GetDag"].histogram.summary()
    report: dict[str, Any] = {
        "schema": SCHEMA,
        **meta,
        "machine": machine,
        "images": images,
        "locust_version": locust_version,
        "parameters": parameters,
        "cold": cold_section(cold_samples) if cold_samples else None,
        "warm": warm,
        "floor": floor_json,
        "large_feed": large_feed,
        "run_store": run_store,
        "capacity": capacity,
        "cloud_cold": cloud_cold,
    }
    report["ratios"] = {k: v.to_json() for k, v in ratios.compute(report).items()}
    return report


def write(
    folder: Path,
    report: dict[str, Any],
    floor: dict[str, Histogram] | None,
    run_store_raw: dict[str, Any] | None = None,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / "raw"
    raw.mkdir(exist_ok=True)
    if floor is not None:
        (raw / "floor.json").write_text(
            json.dumps({k: h.to_json() for k, h in floor.items()}, separators=(",", ":")) + "\n"
        )
    if run_store_raw is not None:
        (raw / "run_store.json").write_text(json.dumps(run_store_raw, separators=(",", ":")) + "\n")
    (folder / REPORT_JSON).write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    render(folder)


def load(path: Path) -> dict[str, Any]:
    """A report from its folder or its report.json."""
    file = path / REPORT_JSON if path.is_dir() else path
    data: dict[str, Any] = json.loads(file.read_text())
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{file}: report schema {data.get('schema')!r}, expected {SCHEMA}")
    return data


# --- Markdown ------------------------------------------------------------------


def fmt_us(us: float) -> str:
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        return f"{us / 1000:.2f} ms" if us < 10_000 else f"{us / 1000:.1f} ms"
    return f"{us / 1e6:.2f} s"


def _fmt(value: float, unit: str) -> str:
    return f"{value:.2f} s" if unit == "s" else fmt_us(value)


def _pcols(summary: dict[str, Any], unit: str) -> list[str]:
    keys = [percentile_key(p) for p in REPORTED_PERCENTILES] + ["max"]
    return [_fmt(float(summary[k]), unit) for k in keys]


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> list[str]:
    # Names and prose left, numbers right (so their digits line up).
    right = ["---" if i < text_columns else "---:" for i in range(len(header))]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(right) + " |",
        *["| " + " | ".join(r) + " |" for r in rows],
    ]


def markdown(report: dict[str, Any]) -> str:
    pcts = [percentile_key(p) for p in REPORTED_PERCENTILES] + ["max"]
    m = report["machine"]
    params = report["parameters"]
    out = [
        f"# Bench report `{report['tag']}`",
        "",
        f"- commit `{report['commit']}`{' (dirty tree)' if report.get('dirty') else ''}, "
        f"measured {report['created']} against {report['target']}"
        + (f" with bench code `{report['bench_commit']}`" if report.get("bench_commit") else ""),
        f"- machine: {m['cpu_model']}, {m['usable_cpus']} usable of {m['logical_cpus']} CPUs, "
        f"{m['memory_bytes'] / 2**30:.1f} GiB, {m['os']}, Python {m['python']}, "
        f"Docker {m.get('docker_server') or '-'}, load average at start "
        f"{' / '.join(str(x) for x in m['load_average_1_5_15'])}"
        + (
            f", at end {' / '.join(str(x) for x in m['load_average_at_end'])}"
            if m.get("load_average_at_end")
            else ""
        ),
        f"- Locust {report['locust_version']}, grpcio {m['packages'].get('grpcio')}, "
        f"continuous-gtfs {m['packages'].get('continuous-gtfs')}",
    ]
    if report.get("images"):
        sizes = ", ".join(
            f"{svc} `{img['ref']}` {img['size_bytes'] / 1e6:.0f} MB"
            for svc, img in report["images"].items()
        )
        out.append(f"- images: {sizes}")
    out.append(f"- parameters: `{json.dumps(params, sort_keys=True)}`")
    out += [
        "",
        "Latency percentiles come from the bench's microsecond histograms "
        "(≤ 0.8 % bucket error, successful calls only)"
        + (
            "; RPS and error counts from Locust's own stats over the same window."
            if report.get("warm")
            else "."
        ),
        "",
    ]

    out += ["## Ratios (what `python -m bench compare` checks)", ""]
    out += _table(
        ["ratio", "gated", "meaning", "value"],
        [
            [f"`{k}`", "yes" if v["gated"] else "no", v["what"], f"{v['value']:.3f}"]
            for k, v in report["ratios"].items()
        ],
        text_columns=3,
    )

    cold = report.get("cold")
    if cold:
        n = len(cold["samples"])
        out += ["", f"## Cold ({n} samples, each a fresh container)", ""]
        rows = [
            [s["what"], str(s["count"]), *_pcols(s, s["unit"])] for s in cold["summary"].values()
        ]
        out += _table(["metric", "n", *pcts], rows)
        out += ["", f"With {n} samples, p90 and above are the largest sample or close to it."]

    warm = report.get("warm")
    if warm:
        load = params.get("load", {})
        out += [
            "",
            f"## Warm ({load.get('users')} users, {warm['window_s']:.0f} s measured "
            f"after {load.get('warmup_s')} s warm-up)",
            "",
        ]
        rows = []
        for name, r in warm["rpcs"].items():
            codes = ", ".join(f"{c} ×{k}" for c, k in r["error_codes"].items()) or "-"
            rows.append(
                [
                    f"`{name}`",
                    r["kind"],
                    f"{r['calls']:,}",
                    f"{r['rps']:.1f}",
                    *_pcols(r["latency_us"], "us"),
                    str(r["errors"]),
                    codes,
                ]
            )
        out += _table(["RPC", "kind", "calls", "RPS", *pcts, "errors", "codes"], rows, 2)

    floor = report.get("floor")
    if floor:
        names = {
            "health_check": "grpc.health.v1 Check loop",
            "get_dag": "plain GetDag loop",
            "get_dag_paced": "plain GetDag loop, Locust's pauses",
            "console_dag": "plain GET /api/dag loop",
            "locust_get_dag": "Locust GetDag, 1 user, no wait",
        }
        out += ["", "## Floor (one caller, one connection, same containers)", ""]
        rows = [[names.get(k, k), f"{s['count']:,}", *_pcols(s, "us")] for k, s in floor.items()]
        out += _table(["loop", "calls", *pcts], rows)

    large = report.get("large_feed")
    if large:
        out += [
            "",
            f"## Large feed ({large['rows']:,} stop_times rows, "
            f"{large['feed_bytes'] / 1e6:.1f} MB zip, {large['uncompressed_bytes'] / 1e6:.0f} MB "
            f"uncompressed; median of {large['repeats']})",
            "",
        ]
        lib = float(large["library_s"])
        rows = [
            ["continuous-gtfs in-process (parse + run)", f"{lib:.2f} s", "1.00"],
            [
                "pipeline RunPipeline (gRPC)",
                f"{large['grpc_s']:.2f} s",
                f"{large['grpc_s'] / lib:.2f}",
            ],
            [
                "console POST /api/runs",
                f"{large['console_s']:.2f} s",
                f"{large['console_s'] / lib:.2f}",
            ],
        ]
        out += _table(["way", "time", "÷ library"], rows)

    if report.get("run_store"):
        out += ["", *run_store_markdown(report["run_store"])]

    if report.get("capacity"):
        out += ["", *capacity_report.markdown(report["capacity"])]

    if report.get("cloud_cold"):
        from bench.cloud import cold_markdown

        out += ["", *cold_markdown(report["cloud_cold"])]

    if has_charts(report):
        out += [
            "",
            "## Charts",
            "",
            f"![latency, cold vs warm]({CDF_PNG})",
            "",
            f"![latency and throughput over time]({TIMELINE_PNG})",
        ]
    out.append("")
    return "\n".join(out)


RUN_STORE_CALLS = {
    "GetRun": "GetRun (a random run)",
    "ListRuns.first_page": "ListRuns, first page",
    "ListRuns.deep_page": "ListRuns, deep page",
}


def run_store_markdown(section: dict[str, Any]) -> list[str]:
    """The run store section: per call and store p50/p90/p99, and large ÷ small p50."""
    stores, bounds = section["stores"], section["bounds"]
    small, large = stores["small"], stores["large"]
    backend = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(
        section["backend"], section["backend"]
    )
    out = [
        f"## Run store ({backend}: {large['runs']:,} runs beside {small['runs']:,}, "
        f"page size {section['page_size']})",
        "",
    ]
    rows = []
    for call, entry in section["calls"].items():
        ratio = entry.get("large_over_small_p50")
        for name in ("small", "large"):
            s = entry[name]
            what = RUN_STORE_CALLS.get(call, call)
            if call == "ListRuns.deep_page":
                what += f" (page {stores[name]['deep_page']})"
            rows.append(
                [
                    what,
                    f"{stores[name]['runs']:,}",
                    f"{s['count']:,}",
                    *[fmt_us(float(s[k])) for k in ("p50", "p90", "p99")],
                    (f"{ratio:.2f}" if ratio is not None else "-") if name == "large" else "",
                ]
            )
    out += _table(
        [
            "call",
            "runs in store",
            "calls",
            "p50",
            "p90",
            "p99",
            f"{large['runs']:,} ÷ {small['runs']:,} p50",
        ],
        rows,
    )
    out += [
        "",
        f"Seeding {large['runs']:,} runs ({large['step_rows']:,} step results, "
        f"{large['db_bytes'] / 1e6:.1f} MB) took {large['seconds']:.2f} s "
        f"({large['runs_per_s']:,} runs/s: migrate {large['migrate_s']:.2f} s, building the rows "
        f"{large['build_s']:.2f} s, inserting {large['insert_s']:.2f} s); following page tokens "
        f"to page {large['deep_page']} took {large['walk_to_deep_page_s'] * 1000:.0f} ms. "
        f"Loops: ≤{bounds['max_calls']:,} calls and ≤{bounds['max_seconds']:g} s per call and "
        "store, the two stores alternating call by call.",
    ]
    return out


def has_charts(report: dict[str, Any]) -> bool:
    """The two latency charts draw the cold, warm and floor phases: a report of
    the run store or capacity phase alone (`python -m bench store` / `capacity`)
    has none of them; any other report has both."""
    measured = ("cold", "warm", "floor", "large_feed")
    alone = report.get("run_store") or report.get("capacity")
    return not alone or any(report.get(k) for k in measured)


# --- charts --------------------------------------------------------------------


def _cdf(h: Histogram) -> tuple[list[float], list[float]]:
    xs, ys, seen = [], [], 0
    for _low, high, n in h.buckets():
        seen += n
        xs.append(max(1, min(high, h.max)) / 1000)
        ys.append(seen / h.count)
    return xs, ys


def _sample_cdf(values: list[float]) -> tuple[list[float], list[float]]:
    ordered = sorted(values)
    return [v / 1000 for v in ordered], [(i + 1) / len(ordered) for i in range(len(ordered))]


def _plain_log_axis(axis: Any) -> None:
    """Log scale with plain numbers (0.5, 1, 2, 5) instead of 5 x 10^-1."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda _v, _pos: ""))


def charts(folder: Path, report: dict[str, Any], warm: Recorder | None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    floor_hists: dict[str, Histogram] = {}
    floor_file = folder / "raw" / "floor.json"
    if floor_file.exists():
        floor_hists = {
            k: Histogram.from_json(v) for k, v in json.loads(floor_file.read_text()).items()
        }
    samples = (report.get("cold") or {}).get("samples") or []
    tag = str(report["tag"])[:12]
    written = []

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    panels = (
        ("gRPC GetDag", "GetDag", ("get_dag", "get_dag_paced"), "first_rpc_us", "second_rpc_us"),
        (
            "console GET /api/dag",
            "/api/dag",
            ("console_dag",),
            "console_first_us",
            "console_second_us",
        ),
    )
    labels = {
        "get_dag": "warm, plain loop",
        "get_dag_paced": "warm, plain loop with pauses",
        "console_dag": "warm, plain loop",
    }
    for ax, (title, warm_name, floor_names, first, second) in zip(axes, panels, strict=True):
        drawn = False
        if warm and warm_name in warm.methods and warm.methods[warm_name].histogram.count:
            ax.step(
                *_cdf(warm.methods[warm_name].histogram), where="post", label="warm, Locust load"
            )
            drawn = True
        for floor_name in floor_names:
            if floor_name in floor_hists and floor_hists[floor_name].count:
                ax.step(*_cdf(floor_hists[floor_name]), where="post", label=labels[floor_name])
                drawn = True
        # A handful of cold samples: points on the same CDF axes, no line between.
        for key, label, marker in (
            (first, "cold: first call", "o"),
            (second, "cold: 2nd call", "x"),
        ):
            values = [float(s[key]) for s in samples if float(s[key]) > 0]
            if values:
                ax.plot(
                    *_sample_cdf(values), marker=marker, linestyle="none", markersize=8, label=label
                )
                drawn = True
        ax.set_title(title)
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("fraction of calls ≤ latency")
        ax.set_ylim(0, 1.03)
        ax.grid(True, which="major", alpha=0.3)
        if drawn:
            ax.set_xscale("log")
            _plain_log_axis(ax.xaxis)
            ax.legend(loc="lower right", fontsize="small")
    fig.suptitle(f"Latency distribution, cold vs warm — {tag}")
    path = folder / CDF_PNG
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), sharex=True, constrained_layout=True)
    warmup = float(((report.get("parameters") or {}).get("load") or {}).get("warmup_s") or 0)
    if warm and any(warm.timeline.values()):
        totals: dict[int, int] = {}
        for name in sorted(warm.timeline):
            seconds = sorted(warm.timeline[name].items())
            ok = [(sec, slot.histogram) for sec, slot in seconds if slot.histogram.count]
            if ok:
                (line,) = top.plot(
                    [sec for sec, _h in ok],
                    [h.value_at(50) / 1000 for _s, h in ok],
                    marker=".",
                    label=f"{name} p50",
                )
                top.plot(
                    [sec for sec, _h in ok],
                    [h.value_at(99) / 1000 for _s, h in ok],
                    linestyle=":",
                    color=line.get_color(),
                )
            for sec, slot in seconds:
                totals[sec] = totals.get(sec, 0) + slot.histogram.count + slot.errors
            bottom.plot(
                [sec for sec, _slot in seconds],
                [slot.histogram.count + slot.errors for _s, slot in seconds],
                marker=".",
                label=name,
            )
        ordered = sorted(totals.items())
        bottom.plot(
            [s for s, _n in ordered],
            [n for _s, n in ordered],
            color="black",
            linewidth=2,
            label="all calls",
        )
        top.set_yscale("log")
        _plain_log_axis(top.yaxis)
        top.legend(loc="upper right", fontsize="x-small", ncol=3)
        bottom.legend(loc="upper right", fontsize="x-small", ncol=4)
    for ax in (top, bottom):
        if warmup:
            ax.axvspan(0, warmup, color="grey", alpha=0.15)
        ax.grid(True, alpha=0.3)
    top.set_ylabel("latency, ms (log)\nsolid p50, dotted p99")
    bottom.set_ylabel("calls completed per second")
    bottom.set_xlabel("seconds since the load started (grey: warm-up, excluded from the tables)")
    fig.suptitle(f"Warm load: latency and throughput over time — {tag}")
    path = folder / TIMELINE_PNG
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def render(folder: Path, recompute: bool = False) -> list[Path]:
    """Write report.md and the charts from report.json and raw/ in `folder`.

    With `recompute`, the ratios are derived again with the current definitions
    (bench/ratios.py) and report.json is rewritten with them first.
    """
    report = load(folder)
    if recompute:
        report["ratios"] = {k: v.to_json() for k, v in ratios.compute(report).items()}
        (folder / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    warm_dir = folder / "raw" / "warm"
    warm = load_dir(warm_dir) if list(warm_dir.glob("hist-*.json")) else None
    (folder / REPORT_MD).write_text(markdown(report))
    written = [folder / REPORT_MD]
    if has_charts(report):
        written += charts(folder, report, warm)
    if report.get("capacity"):
        written.append(capacity_report.chart(folder, report["capacity"], str(report["tag"])[:12]))
    return written
