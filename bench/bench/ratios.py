"""The dimensionless numbers a result is judged by, and `compare` against a baseline.

Absolute times say as much about the machine as about the code: this 2-core
VM, a laptop and a CI runner differ by 2x on the same commit. Each ratio below
divides a measurement by a floor measured *in the same run on the same
machine*, so a slower machine moves numerator and denominator together and a
slower service moves only the numerator. Higher is worse for all of them.

`gated` ratios are what `python -m bench compare` fails on; the others are in
the report to read, but too noisy at bench scale to gate: tails (the p99 of a
20-second run rests on a few calls), the five cold first calls, and the
console's plain loop, which swung by 30-180 % between three back-to-back runs
on the shared 2-core VM while the gated ones stayed within about 20 %
(bench/README.md has the numbers).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

#: Default regression threshold: a gated ratio may grow by 25 % before compare fails.
DEFAULT_THRESHOLD = 0.25
#: An error rate is compared in absolute terms: this much above the baseline's
#: fraction of failed calls (or threshold x the baseline, if larger) fails.
ERROR_RATE_SLACK = 0.001


@dataclass(frozen=True)
class Ratio:
    value: float
    gated: bool
    what: str
    kind: str = "ratio"  # "ratio" (relative threshold) or "rate" (absolute slack)

    def to_json(self) -> dict[str, Any]:
        return {
            "value": round(self.value, 4),
            "gated": self.gated,
            "what": self.what,
            "kind": self.kind,
        }


def _p50(summary: dict[str, Any] | None) -> float:
    return float(summary.get("p50", 0.0)) if summary else 0.0


def _div(a: float, b: float) -> float | None:
    return a / b if a > 0 and b > 0 else None


def compute(report: dict[str, Any]) -> dict[str, Ratio]:
    """Every ratio the report's sections allow (a skipped phase gives none)."""
    out: dict[str, Ratio] = {}

    def put(name: str, value: float | None, gated: bool, what: str, kind: str = "ratio") -> None:
        if value is not None:
            out[name] = Ratio(value, gated, what, kind)

    floor = report.get("floor") or {}
    health = _p50(floor.get("health_check"))
    plain_dag = _p50(floor.get("get_dag"))
    plain_console = _p50(floor.get("console_dag"))
    put(
        "floor.get_dag_over_health",
        _div(plain_dag, health),
        True,
        "plain GetDag p50 ÷ health Check p50 (service work per call, one client)",
    )
    put(
        "floor.console_over_grpc",
        _div(plain_console, plain_dag),
        False,
        "plain GET /api/dag p50 ÷ plain GetDag p50 (the console's HTTP→gRPC hop)",
    )
    paced_dag = _p50(floor.get("get_dag_paced"))
    put(
        "floor.paced_over_plain",
        _div(paced_dag, plain_dag),
        False,
        "plain GetDag p50 with Locust's pauses ÷ without (idle wake-up cost of this machine)",
    )
    calibration = floor.get("locust_get_dag")
    put(
        "floor.locust_over_plain",
        _div(_p50(calibration), plain_dag),
        True,
        "Locust GetDag p50 (1 user, no wait) ÷ plain GetDag loop p50 (load generator overhead)",
    )

    warm = report.get("warm") or {}
    rpcs: dict[str, Any] = warm.get("rpcs") or {}
    for name, rpc in sorted(rpcs.items()):
        latency = rpc.get("latency_us")
        put(
            f"warm.{name}.p50_over_floor",
            _div(_p50(latency), health),
            True,
            f"warm {name} p50 under load ÷ health Check p50",
        )
        put(
            f"warm.{name}.p99_over_floor",
            _div(float((latency or {}).get("p99", 0.0)), health),
            False,
            f"warm {name} p99 under load ÷ health Check p50",
        )
    if "GetDag" in rpcs:
        put(
            "warm.load_over_plain",
            _div(_p50(rpcs["GetDag"].get("latency_us")), plain_dag),
            False,
            "warm GetDag p50 (all users) ÷ plain GetDag loop p50 (queueing under load)",
        )
        put(
            "warm.locust_over_paced",
            _div(_p50(rpcs["GetDag"].get("latency_us")), paced_dag),
            False,
            "warm Locust GetDag p50 ÷ plain GetDag p50 at the same pauses",
        )
    calls = sum(int(r.get("calls", 0)) for r in rpcs.values())
    errors = sum(int(r.get("errors", 0)) for r in rpcs.values())
    if calls:
        put("warm.error_rate", errors / calls, True, "failed ÷ all calls in the window", "rate")

    cold = report.get("cold") or {}
    samples: list[dict[str, Any]] = cold.get("samples") or []
    if samples:

        def median(key: str) -> float:
            return float(statistics.median(float(s[key]) for s in samples))

        put(
            "cold.serving_over_python_start",
            _div(median("serving_s"), median("python_start_s")),
            True,
            "median start→SERVING ÷ median container+bare-interpreter start",
        )
        put(
            "cold.console_start_over_python_start",
            _div(median("console_start_s"), median("python_start_s")),
            False,
            "median console start→/healthz ÷ median container+bare-interpreter start",
        )
        put(
            "cold.first_rpc_over_plain",
            _div(median("first_rpc_us"), plain_dag),
            False,
            "median first GetDag on a fresh instance ÷ plain GetDag p50",
        )
        put(
            "cold.console_first_over_plain",
            _div(median("console_first_us"), plain_console),
            False,
            "median first GET /api/dag on a fresh console ÷ plain GET /api/dag p50",
        )

    large = report.get("large_feed")
    if large:
        rows = f"{int(large['rows']):,}-row"
        put(
            "large_feed.console_over_library",
            _div(float(large["console_s"]), float(large["library_s"])),
            True,
            f"{rows} run through POST /api/runs ÷ the same run in-process with continuous-gtfs",
        )
        put(
            "large_feed.grpc_over_library",
            _div(float(large["grpc_s"]), float(large["library_s"])),
            True,
            f"{rows} RunPipeline over gRPC ÷ the same run in-process with continuous-gtfs",
        )

    store = report.get("run_store")
    if store:
        stores = store.get("stores") or {}
        many = int((stores.get("large") or {}).get("runs", 0))
        few = int((stores.get("small") or {}).get("runs", 0))
        for call, entry in (store.get("calls") or {}).items():
            put(
                f"run_store.{call}.large_over_small",
                _div(_p50(entry.get("large")), _p50(entry.get("small"))),
                call in RUN_STORE_GATED,
                f"{call} p50 with {many:,} runs in the store ÷ with {few:,} "
                f"({store.get('backend', '?')}, same run)",
            )

    capacity = report.get("capacity")
    if capacity:
        # Knees are steps of ×factor apart: one step either way is a change of
        # 33-50 %, past any threshold, from quantisation alone. Not gated.
        factor = (capacity.get("plan") or {}).get("factor", "?")
        knees = {k: float(t.get("knee_rps", 0)) for k, t in capacity["targets"].items()}
        put(
            "capacity.bare_over_pipeline",
            _div(knees.get("bare", 0.0), knees.get("pipeline", 0.0)),
            False,
            f"bare grpcio health knee ÷ pipeline GetDag knee (steps ×{factor} apart)",
        )
        put(
            "capacity.pipeline_over_console",
            _div(knees.get("pipeline", 0.0), knees.get("console", 0.0)),
            False,
            f"pipeline GetDag knee ÷ console GET /api/dag knee (steps ×{factor} apart)",
        )
    return out


#: The run store ratios compare fails on (see bench/README.md for their spread).
RUN_STORE_GATED = frozenset({"GetRun", "ListRuns.first_page", "ListRuns.deep_page"})


# --- compare ----------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    name: str
    baseline: float | None
    current: float | None
    status: str  # "ok", "regressed", "improved", "missing", "new"

    @property
    def change(self) -> float | None:
        if self.baseline and self.current is not None:
            return self.current / self.baseline - 1.0
        return None


def judge(baseline: dict[str, Any], current: dict[str, Any], threshold: float) -> list[Verdict]:
    """Compare the gated ratios of two reports' `ratios` sections.

    A ratio gated in the baseline but absent now (a phase skipped) is
    "missing", not a failure; one new since the baseline is "new".
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, not {threshold}")
    out = []
    names = sorted(set(baseline) | set(current))
    for name in names:
        b, c = baseline.get(name), current.get(name)
        gated = bool((b or c or {}).get("gated"))
        if not gated:
            continue
        if b is None or c is None:
            out.append(
                Verdict(
                    name,
                    None if b is None else float(b["value"]),
                    None if c is None else float(c["value"]),
                    "new" if b is None else "missing",
                )
            )
            continue
        bv, cv = float(b["value"]), float(c["value"])
        if (b.get("kind") or "ratio") == "rate":
            allowed = max(threshold * bv, ERROR_RATE_SLACK)
            status = "regressed" if cv - bv > allowed else "ok"
        elif cv > bv * (1.0 + threshold):
            status = "regressed"
        elif cv < bv * (1.0 - threshold):
            status = "improved"
        else:
            status = "ok"
        out.append(Verdict(name, bv, cv, status))
    return out


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def parameter_differences(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Parameters that differ between two runs: ratios depend on users, pauses,
    feed size..., so comparing runs made differently is comparing apples and pears."""
    b, c = _flatten(baseline), _flatten(current)
    return [
        f"{key}: {b.get(key, '-')} → {c.get(key, '-')}"
        for key in sorted(set(b) | set(c))
        if b.get(key) != c.get(key)
    ]


def render_verdicts(verdicts: list[Verdict], threshold: float) -> str:
    lines = [f"{'ratio':<44} {'baseline':>10} {'current':>10} {'change':>8}  verdict"]
    for v in verdicts:
        base = f"{v.baseline:.3f}" if v.baseline is not None else "-"
        cur = f"{v.current:.3f}" if v.current is not None else "-"
        change = f"{v.change:+.0%}" if v.change is not None else "-"
        lines.append(f"{v.name:<44} {base:>10} {cur:>10} {change:>8}  {v.status}")
    bad = [v for v in verdicts if v.status == "regressed"]
    lines.append(
        f"{len(bad)} of {len(verdicts)} gated ratios regressed beyond +{threshold:.0%}"
        if bad
        else f"no gated ratio regressed beyond +{threshold:.0%}"
    )
    return "\n".join(lines)
