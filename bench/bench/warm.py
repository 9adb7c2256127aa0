"""Warm: Locust headless, as a subprocess, against containers already running.

Locust monkey-patches the standard library with gevent when it is imported,
so the runner never imports it: it runs `python -m locust -f
bench/locustfile.py --headless ...` and reads back what that process wrote —
Locust's CSV stats (throughput, errors) and the locustfile's microsecond
histograms (percentiles, timeline). The first `warmup_s` seconds are excluded
by the locustfile itself (histogram window, and Locust's stats reset then).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.recorder import Recorder, load_dir

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
REPO = LOCUSTFILE.parents[2]
# Seconds Locust may need past --run-time: start-up, --stop-timeout, CSV writing.
OVERRUN_S = 90.0

#: Locust task weights by locustfile option; zero disables a task.
DEFAULT_WEIGHTS: dict[str, int] = {
    "weight_get_status": 5,
    "weight_list_steps": 5,
    "weight_get_dag": 10,
    "weight_run_pipeline": 1,
    "weight_api_dag": 2,
    "weight_api_status": 1,
}


class LocustFailed(RuntimeError):
    """The Locust process crashed or overran; the message has its log's tail."""


@dataclass(frozen=True)
class LoadPlan:
    users: int = 4
    console_users: int = 1
    seconds: int = 20
    warmup_s: int = 5
    wait_min: float = 0.05
    wait_max: float = 0.2
    run_rows: int = 2000
    weights: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    classes: tuple[str, ...] = ("PipelineUser", "ConsoleUser")
    # The window ends once it is `seconds` long *and* every weighted task has
    # `min_calls` calls in it, or at `max_seconds` (the bound) whichever comes
    # first: a short window on a loaded machine is never empty of a rare task.
    # min_calls 0: the window is `seconds`, as before.
    min_calls: int = 0
    max_seconds: float = 0.0

    @property
    def window_bound_s(self) -> float:
        """The longest the measured window may last."""
        return max(float(self.seconds), self.max_seconds) if self.min_calls > 0 else self.seconds

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LocustResult:
    recorder: Recorder
    # Locust's final per-entry stats (locust.json: name, method, num_requests,
    # num_failures, start_time, last_request_timestamp, ...).
    stats: list[dict[str, Any]]
    command: list[str]
    log: Path


def locust_version() -> str:
    # The distribution's metadata: importing locust here would monkey-patch us.
    return version("locust")


def command(plan: LoadPlan, pipeline_target: str, console_url: str | None, out: Path) -> list[str]:
    run_time = math.ceil(plan.warmup_s + plan.window_bound_s)
    args = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(plan.users),
        # All users at once: the ramp belongs to the warm-up, not the window.
        "--spawn-rate",
        str(plan.users),
        "--run-time",
        f"{run_time}s",
        "--stop-timeout",
        "10",
        "--only-summary",
        "--csv",
        str(out / "locust"),
        # The CSVs are rewritten once a second and not at exit, so they miss the
        # last second; the JSON file is written at shutdown with every request.
        "--json-file",
        str(out / "locust"),
        # Errors are results to report, not a reason for a non-zero exit.
        "--exit-code-on-error",
        "0",
        "--pipeline-target",
        pipeline_target,
        "--bench-warmup",
        str(plan.warmup_s),
        "--bench-hist-dir",
        str(out),
        "--wait-min",
        str(plan.wait_min),
        "--wait-max",
        str(plan.wait_max),
        "--run-rows",
        str(plan.run_rows),
        "--console-users",
        str(plan.console_users if "ConsoleUser" in plan.classes else 0),
    ]
    if plan.min_calls > 0:
        args += ["--bench-min-calls", str(plan.min_calls), "--bench-min-seconds", str(plan.seconds)]
    if console_url:
        args += ["--host", console_url]
    for option, weight in plan.weights.items():
        args += ["--" + option.replace("_", "-"), str(weight)]
    return [*args, *plan.classes]


def _progress(out: Path) -> tuple[int, int] | None:
    """(calls, failures) so far over all Locust processes, from their progress files."""
    calls = errors = 0
    files = list(out.glob("progress-*.json"))
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now; next tick
        calls += int(data["calls"])
        errors += int(data["errors"])
    return (calls, errors) if files else None


def run(
    plan: LoadPlan,
    pipeline_target: str,
    console_url: str | None,
    out: Path,
    progress: Callable[[float, float, str], None] | None = None,
) -> LocustResult:
    """Run Locust to completion (bounded by its run time plus OVERRUN_S)."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("hist-*.json"), *out.glob("progress-*.json")]:
        stale.unlink()
    cmd = command(plan, pipeline_target, console_url, out)
    log_path = out / "locust.log"
    total = plan.warmup_s + plan.window_bound_s
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        try:
            while proc.poll() is None:
                elapsed = time.monotonic() - t0
                if elapsed > total + OVERRUN_S:
                    proc.kill()
                    proc.wait()
                    raise LocustFailed(
                        f"locust overran {total + OVERRUN_S:.0f}s: {_tail(log_path)}"
                    )
                if progress:
                    phase = "warm-up" if elapsed < plan.warmup_s else "measuring"
                    seen = _progress(out)
                    extra = f"{seen[0]:,} calls, {seen[1]:,} failed" if seen else "starting"
                    progress(min(elapsed, total), total, f"{phase}  {extra}".rstrip())
                time.sleep(1.0)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
    if proc.returncode != 0:
        raise LocustFailed(f"locust exited {proc.returncode}: {_tail(log_path)}")
    for progress_file in out.glob("progress-*.json"):
        progress_file.unlink()  # only meant for the live progress line
    stats_file = out / "locust.json"
    return LocustResult(
        recorder=load_dir(out),
        stats=json.loads(stats_file.read_text()) if stats_file.exists() else [],
        command=cmd,
        log=log_path,
    )


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])
