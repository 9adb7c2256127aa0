"""Capacity: how much one instance takes before its p99 breaks.

For one target (the bare grpcio server's health Check, the pipeline's GetDag,
the console's GET /api/dag) the offered rate rises step by step — `start_rps`,
then × `factor` — each step a fresh open-loop Locust run of `warmup_s` +
`seconds` (bench/capacity_locustfile.py). A step *holds* when, over its
window, p99 ≤ the SLO, errors ≤ `max_error_rate` and the server completed at
least `min_achieved` of what was offered. Stepping stops at the first step
that does not hold (or at `max_steps` / `max_rps`), so a target costs at most
`max_steps` × (start-up + `warmup_s` + at most `max_step_seconds`). The
**knee** is the highest offered rate at which every step up to it held.

The generator's own limits are part of the result, not hidden in it: each
Locust process reports its CPU share over the window and its late starts
(arrivals it sent more than 1 ms after their time). A step where any process
used more than `GENERATOR_BOUND_CPU` of a core is marked generator-bound: its
latency may be the generator's, and a knee found there is a lower bound on the
server's capacity, not its value. More processes (`processes`, Locust's
`--processes`) or more generator CPUs raise that ceiling.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.histogram import Histogram

LOCUSTFILE = Path(__file__).with_name("capacity_locustfile.py")
REPO = LOCUSTFILE.parents[2]
#: A generator process above this share of one core is the bottleneck, not the server.
GENERATOR_BOUND_CPU = 0.8
#: Seconds a step's Locust may run past its window before --run-time ends it.
RUN_TIME_SLACK_S = 20.0
#: Seconds a step's Locust may take beyond its run time (start-up, stop, files).
STEP_OVERRUN_S = 60.0
#: Users per unit of (rate × SLO): the calls in flight at the SLO, times this margin.
USERS_PER_INFLIGHT = 4
MIN_USERS, MAX_USERS = 4, 400


class CapacityFailed(RuntimeError):
    """A step's Locust crashed, overran or wrote no result; the message says why."""


@dataclass(frozen=True)
class Plan:
    start_rps: float = 50.0
    factor: float = 1.5
    max_steps: int = 10
    max_rps: float = 20_000.0
    warmup_s: float = 1.0
    seconds: float = 4.0
    grpc_slo_ms: float = 10.0
    http_slo_ms: float = 25.0
    max_error_rate: float = 0.001
    min_achieved: float = 0.95
    processes: int = 1
    # Fixed users per step (a Cloud Run environment's concurrency); 0: from the rate.
    users: int = 0
    # CPUs the generator is pinned to ("0", "0-1"); empty: not pinned.
    generator_cpus: str = ""
    # A step's window is long enough for this many calls, so its p99 is not one
    # or two calls (at 50/s a 4 s window holds 200: p99 is the 2nd worst)...
    p99_calls: int = 500
    # ... but never longer than this.
    max_step_seconds: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if self.start_rps <= 0:
            problems.append(f"start rate {self.start_rps} must be positive")
        if self.factor <= 1:
            problems.append(f"step factor {self.factor} must be above 1")
        if self.max_steps < 1:
            problems.append(f"max steps {self.max_steps} must be at least 1")
        if self.seconds <= 0 or self.warmup_s < 0:
            problems.append("step seconds must be positive and warm-up not negative")
        if self.processes < 1:
            problems.append(f"processes {self.processes} must be at least 1")
        if not 0 < self.min_achieved <= 1:
            problems.append(f"min achieved {self.min_achieved} must be in (0, 1]")
        if problems:
            raise ValueError("capacity plan: " + "; ".join(problems))

    def rates(self) -> list[float]:
        """The offered rates, lowest first, within max_steps and max_rps."""
        out: list[float] = []
        rate = self.start_rps
        while len(out) < self.max_steps and rate <= self.max_rps:
            out.append(round(rate, 1))
            rate *= self.factor
        return out

    def window_s(self, rate: float) -> float:
        """The measured seconds of the step at `rate`: `seconds`, or longer at low
        rates until it holds `p99_calls` calls, at most `max_step_seconds`."""
        wanted = self.p99_calls / rate if rate > 0 else self.seconds
        return round(min(max(self.seconds, wanted), max(self.seconds, self.max_step_seconds)), 2)

    def slo_us(self, call: str) -> int:
        return int((self.http_slo_ms if call == "api_dag" else self.grpc_slo_ms) * 1000)

    def users_for(self, rate: float, call: str) -> int:
        if self.users > 0:
            return self.users
        inflight = rate * self.slo_us(call) / 1e6
        users = math.ceil(inflight * USERS_PER_INFLIGHT)
        return max(MIN_USERS, self.processes, min(MAX_USERS, users))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Step:
    offered_rps: float
    users: int
    window_s: float
    sent: int
    ok: int
    errors: dict[str, int]
    late: int
    latency_us: dict[str, float | int]
    # Per generator process: its CPU seconds over the window ÷ the window.
    generator_cpu: list[float] = field(default_factory=list)
    holds: bool = False
    why: str = ""

    @property
    def achieved_rps(self) -> float:
        return self.ok / self.window_s if self.window_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        failed = sum(self.errors.values())
        return failed / self.sent if self.sent else 0.0

    @property
    def generator_bound(self) -> bool:
        return any(c > GENERATOR_BOUND_CPU for c in self.generator_cpu)

    def to_json(self) -> dict[str, Any]:
        return {
            "offered_rps": self.offered_rps,
            "achieved_rps": round(self.achieved_rps, 1),
            "users": self.users,
            "window_s": self.window_s,
            "sent": self.sent,
            "ok": self.ok,
            "errors": dict(sorted(self.errors.items())),
            "error_rate": round(self.error_rate, 5),
            "late_starts": self.late,
            "latency_us": self.latency_us,
            "generator_cpu": [round(c, 3) for c in self.generator_cpu],
            "generator_bound": self.generator_bound,
            "holds": self.holds,
            "why": self.why,
        }


def merge_step(offered: float, users: int, files: Sequence[dict[str, Any]]) -> Step:
    """One step from every generator process's result file."""
    if not files:
        raise CapacityFailed(f"the {offered:g}/s step wrote no result file")
    hist = Histogram.merged(Histogram.from_json(f["histogram"]) for f in files)
    errors: Counter[str] = Counter()
    for f in files:
        errors.update({k: int(v) for k, v in f["errors"].items()})
    window = max(float(f["window_s"]) for f in files)
    return Step(
        offered_rps=offered,
        users=users,
        window_s=window,
        sent=sum(int(f["sent"]) for f in files),
        ok=hist.count,
        errors=dict(errors),
        late=sum(int(f["late"]) for f in files),
        latency_us=hist.summary(),
        generator_cpu=[
            float(f["cpu_s"]) / float(f["window_s"])
            for f in files
            if f.get("cpu_s") is not None and float(f["window_s"]) > 0
        ],
    )


def judge(step: Step, slo_us: int, plan: Plan) -> Step:
    """Set `holds` and, when it does not, `why` (every reason, worst first)."""
    reasons = []
    if step.error_rate > plan.max_error_rate:
        reasons.append(f"errors {step.error_rate:.2%} > {plan.max_error_rate:.2%}")
    p99 = float(step.latency_us.get("p99", 0))
    if step.ok == 0 or p99 > slo_us:
        reasons.append(f"p99 {p99 / 1000:.1f} ms > SLO {slo_us / 1000:g} ms")
    # Each user sends rate/users per second from a random phase, so a window holds
    # rate x window calls give or take one per user: that much is not a shortfall.
    expected = max(0.0, step.offered_rps * step.window_s - step.users)
    if step.ok < plan.min_achieved * expected:
        share = f"{plan.min_achieved:.0%} of {step.offered_rps:g}/s"
        reasons.append(f"achieved {step.achieved_rps:.0f}/s < {share}")
    step.holds = not reasons
    step.why = "; ".join(reasons)
    return step


@dataclass
class TargetResult:
    name: str
    call: str
    target: str
    slo_us: int
    steps: list[Step]

    @property
    def knee(self) -> Step | None:
        """The highest step at which it and every step below it held."""
        held = self._held_prefix()
        return held[-1] if held else None

    @property
    def knee_rps(self) -> float:
        knee = self.knee
        return knee.offered_rps if knee else 0.0

    @property
    def knee_is_lower_bound(self) -> bool:
        """The knee says less than the server's capacity: no step broke within the
        plan, or the generator was the bottleneck at the knee or the step above it."""
        held = self._held_prefix()
        if len(held) == len(self.steps):
            return True
        return self.steps[len(held)].generator_bound or bool(held and held[-1].generator_bound)

    def _held_prefix(self) -> list[Step]:
        out = []
        for step in self.steps:
            if not step.holds:
                break
            out.append(step)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "call": self.call,
            "target": self.target,
            "slo_us": self.slo_us,
            "knee_rps": self.knee_rps,
            "knee_is_lower_bound": self.knee_is_lower_bound,
            "steps": [s.to_json() for s in self.steps],
        }


def step_command(
    plan: Plan, call: str, target: str, rate: float, users: int, out: Path, seed: int
) -> list[str]:
    # The locustfile ends the test itself once its window has closed; the run time
    # only bounds a step whose users never finished spawning.
    window = plan.window_s(rate)
    run_time = math.ceil(plan.warmup_s + window + RUN_TIME_SLACK_S)
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
        "--headless", "--only-summary", "--loglevel", "WARNING",
        # Every user within the first 50 ms: Locust spawns `--spawn-rate` users per
        # second, and a slow ramp would offer less than the rate inside the window.
        "--users", str(users), "--spawn-rate", str(users * 20),
        "--run-time", f"{run_time}s", "--stop-timeout", "0",
        "--exit-code-on-error", "0",
        "--cap-call", call, "--cap-target", target,
        "--cap-rate", f"{rate:g}", "--cap-users", str(users),
        "--cap-warmup", f"{plan.warmup_s:g}", "--cap-seconds", f"{window:g}",
        "--cap-seed", str(seed), "--cap-out", str(out),
    ]  # fmt: skip
    if plan.processes > 1:
        cmd += ["--processes", str(plan.processes)]
    return cmd


def parse_cpus(text: str) -> set[int]:
    """ "0", "0,2" or "0-3" → CPU numbers (what taskset and --cpuset-cpus take)."""
    cpus: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"CPU list {text!r}: expected numbers like 0, 0,2 or 0-3")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def run_step(plan: Plan, call: str, target: str, rate: float, out: Path, seed: int) -> Step:
    """One step: Locust (pinned to the generator CPUs) at `rate`, merged and judged."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("cap-*.json"):
        stale.unlink()
    users = plan.users_for(rate, call)
    cmd = step_command(plan, call, target, rate, users, out, seed)
    cpus = parse_cpus(plan.generator_cpus) if plan.generator_cpus else None

    def pin() -> None:  # in the child, before exec: Locust and its workers inherit it
        if cpus:
            os.sched_setaffinity(0, cpus)

    log = out / "locust.log"
    timeout = plan.warmup_s + plan.window_s(rate) + RUN_TIME_SLACK_S + STEP_OVERRUN_S
    with log.open("wb") as fh:
        try:
            done = subprocess.run(
                cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout,
                preexec_fn=pin, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as err:
            raise CapacityFailed(f"the {rate:g}/s step overran {timeout:.0f}s") from err
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise CapacityFailed(f"the {rate:g}/s step's Locust exited {done.returncode}: {tail}")
    files = [json.loads(p.read_text()) for p in sorted(out.glob("cap-*.json"))]
    return judge(merge_step(rate, users, files), plan.slo_us(call), plan)


def measure(
    name: str,
    call: str,
    target: str,
    plan: Plan,
    out: Path,
    say: Callable[[str], None] = lambda _m: None,
) -> TargetResult:
    """Step the offered rate up until a step does not hold (bounded by the plan)."""
    result = TargetResult(name, call, target, plan.slo_us(call), [])
    for i, rate in enumerate(plan.rates()):
        step = run_step(plan, call, target, rate, out / f"step-{i:02d}", seed=i + 1)
        result.steps.append(step)
        p = step.latency_us
        cpu = max(step.generator_cpu, default=0.0)
        say(
            f"  {name} {rate:>8g}/s → {step.achieved_rps:8.0f}/s  p50 {p.get('p50', 0) / 1000:.2f}"
            f" p99 {p.get('p99', 0) / 1000:.2f} ms  errors {step.error_rate:.2%}  generator CPU "
            f"{cpu:.0%}{' (generator-bound)' if step.generator_bound else ''}"
            f"{'' if step.holds else '  ✗ ' + step.why}"
        )
        if not step.holds:
            break
    return result


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if numerator > 0 and denominator > 0 else None


def section(plan: Plan, results: dict[str, TargetResult], placement: str) -> dict[str, Any]:
    """The report's capacity section: every target's steps and knee, and the ratios."""
    knees = {k: r.knee_rps for k, r in results.items()}
    return {
        "plan": plan.to_json(),
        "placement": placement,
        "generator_bound_cpu": GENERATOR_BOUND_CPU,
        "targets": {k: r.to_json() for k, r in results.items()},
        "pipeline_over_bare": _ratio(knees.get("pipeline", 0), knees.get("bare", 0)),
        "console_over_pipeline": _ratio(knees.get("console", 0), knees.get("pipeline", 0)),
    }
