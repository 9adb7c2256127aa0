"""`python -m bench`: cold + warm + floor + large feed → a report; compare; re-render.

    python -m bench run [--allow-dirty] [--cold-samples 5] [--users 4] [--seconds 20] ...
    python -m bench compare RESULT [--baseline bench/results/baseline] [--threshold 0.25]
    python -m bench report RESULT
    python -m bench store [--store-runs 10000]   (the run store phase alone)
    python -m bench hist FOLDER      (percentiles of a stock `locust -f bench/locustfile.py` run)

`run` builds (or reuses) both images at the checkout's commit, then against
containers on loopback: cold samples (fresh containers each), one warm stack for
the floor loops, the Locust calibration, the Locust load, the large feed and
the run store (GetRun/ListRuns on 10,000 seeded runs vs 40, bench/run_store.py),
and writes bench/results/<tag>/ (see bench/report.py for its layout). With
`--pipeline-target/--console-url` it benches a running environment instead (no
cold phase); anything but loopback needs `--allow-remote`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import capacity, capacity_report, cold, floor, machine, ratios, report, run_store, warm
from bench.histogram import Histogram
from bench.targets import TargetError, parse_grpc_target, require_loopback
from envctl import gitrepo

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
BASELINE = RESULTS / "baseline"


# --- progress ---------------------------------------------------------------


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@contextmanager
def ticking(message: str, every: float = 10.0) -> Iterator[None]:
    """Say `message`, then how long it has taken every `every` s until done."""
    say(message)
    done = threading.Event()
    t0 = time.monotonic()

    def tick() -> None:
        while not done.wait(every):
            say(f"  … {time.monotonic() - t0:.0f}s")

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def load_progress(label: str) -> Any:
    tty = sys.stderr.isatty()
    last = [0.0]

    def show(elapsed: float, total: float, detail: str) -> None:
        line = f"bench: {label} {elapsed:4.0f}/{total:.0f}s  {detail}"
        if tty:
            end = "\n" if elapsed >= total else ""
            print(f"\r{line:<100}", end=end, file=sys.stderr, flush=True)
        elif elapsed - last[0] >= 5 or elapsed >= total:
            last[0] = elapsed
            print(line, file=sys.stderr, flush=True)

    return show


# --- run --------------------------------------------------------------------


def _inspect_size(ref: str) -> dict[str, Any]:
    import docker

    client = docker.from_env()
    try:
        image = client.images.get(ref)
        labels = image.attrs.get("Config", {}).get("Labels") or {}
        return {
            "ref": ref,
            "id": image.id,
            "size_bytes": int(image.attrs["Size"]),
            # The commit the image says it was built from (harness.images labels it).
            "revision": labels.get("org.opencontainers.image.revision", "unknown"),
        }
    finally:
        client.close()


def _head() -> tuple[str, bool]:
    """HEAD, and whether anything in the tree (untracked files too) differs from it."""
    return gitrepo.head(REPO), bool(gitrepo.changed(REPO))


def _bench_head() -> tuple[str, str]:
    """HEAD, and "-dirty" when the bench's own code has uncommitted changes."""
    changed = gitrepo.changed(REPO, "bench", ":!bench/results")
    return gitrepo.head(REPO), "-dirty" if changed else ""


def _images(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """(meta, image refs): explicit refs as given, or both built at the checkout."""
    if args.pipeline_image and args.console_image:
        # What is measured is the images: their commit and tag, not the checkout's.
        tag = args.pipeline_image.rsplit(":", 1)[-1]
        refs = {"pipeline": args.pipeline_image, "console": args.console_image}
        images = {svc: _inspect_size(ref) for svc, ref in refs.items()}
        commit = images["pipeline"]["revision"]
        if commit == "unknown":
            commit = _head()[0]
        meta = {"commit": commit, "tag": tag, "dirty": tag.endswith("-dirty"), "images": images}
        return meta, refs
    from harness import images as harness_images

    with ticking(f"building (or reusing) both images at {_head()[0][:12]}"):
        build = harness_images.build(allow_dirty=args.allow_dirty)
    for img in build.images.values():
        how = "reused" if img.reused else f"built in {img.seconds:.0f}s"
        say(f"  {img.ref}  {img.size / 1e6:.0f} MB  ({how})")
    images = {
        svc: {"ref": img.ref, "id": img.id, "size_bytes": img.size, "reused": img.reused}
        for svc, img in build.images.items()
    }
    refs = {svc: img.ref for svc, img in build.images.items()}
    meta = {"commit": build.commit, "tag": build.tag, "dirty": build.dirty, "images": images}
    return meta, refs


def _pipeline_image(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """(meta, ref) of the pipeline image alone: as given, or built at the checkout."""
    if args.pipeline_image:
        info = _inspect_size(args.pipeline_image)
        tag = args.pipeline_image.rsplit(":", 1)[-1]
        commit = info["revision"] if info["revision"] != "unknown" else _head()[0]
        meta = {
            "commit": commit,
            "tag": tag,
            "dirty": tag.endswith("-dirty"),
            "images": {"pipeline": info},
        }
        return meta, args.pipeline_image
    from harness import images as harness_images

    with ticking(f"building (or reusing) the pipeline image at {_head()[0][:12]}"):
        build = harness_images.build(allow_dirty=args.allow_dirty, services=("pipeline",))
    img = build.images["pipeline"]
    say(f"  {img.ref}  {img.size / 1e6:.0f} MB  ({'reused' if img.reused else 'built'})")
    meta = {
        "commit": build.commit,
        "tag": build.tag,
        "dirty": build.dirty,
        "images": {
            "pipeline": {"ref": img.ref, "id": img.id, "size_bytes": img.size, "reused": img.reused}
        },
    }
    return meta, img.ref


def _store_parameters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "runs": args.store_runs,
        "small_runs": args.store_small_runs,
        "max_calls": args.store_calls,
        "max_seconds": args.store_seconds,
    }


def _store_phase(
    args: argparse.Namespace, pipeline_image: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run store phase: (report section, raw histograms)."""
    from harness.containers import ContainerFailed

    say(
        f"run store: seeding {args.store_runs:,} and {args.store_small_runs:,} runs, one pipeline "
        f"container on each, GetRun/ListRuns loops (≤{args.store_calls} calls, "
        f"≤{args.store_seconds:g}s per call and store)"
    )
    try:
        result = run_store.run(
            pipeline_image,
            runs=args.store_runs,
            small_runs=args.store_small_runs,
            bounds=floor.Bounds(max_calls=args.store_calls, max_seconds=args.store_seconds),
            say=say,
        )
    except ContainerFailed as err:
        raise run_store.StorePhaseFailed(str(err)) from err
    section = run_store.section(result)
    for call, entry in section["calls"].items():
        say(
            f"  {call:<20} p50 {report.fmt_us(entry['small']['p50'])} ({args.store_small_runs:,} "
            f"runs) vs {report.fmt_us(entry['large']['p50'])} ({args.store_runs:,}): "
            f"×{entry['large_over_small_p50']:.2f}"
        )
    return section, run_store.raw_json(result)


def _capacity_plan(args: argparse.Namespace, users: int = 0) -> capacity.Plan:
    try:
        return capacity.Plan(
            start_rps=args.capacity_start,
            factor=args.capacity_factor,
            max_steps=args.capacity_steps,
            max_rps=args.capacity_max_rps,
            warmup_s=args.capacity_warmup,
            seconds=args.capacity_seconds,
            grpc_slo_ms=args.slo_grpc_ms,
            http_slo_ms=args.slo_http_ms,
            max_error_rate=args.capacity_max_error_rate,
            processes=args.capacity_processes,
            users=users or args.capacity_users,
            generator_cpus=args.generator_cpus,
            p99_calls=args.capacity_p99_calls,
        )
    except ValueError as err:
        raise SystemExit(f"bench: {err}") from err


def _capacity_targets(args: argparse.Namespace) -> list[str]:
    chosen = [t.strip() for t in args.capacity_targets.split(",") if t.strip()]
    unknown = sorted(set(chosen) - {"bare", "pipeline", "console"})
    if unknown or not chosen:
        raise SystemExit(
            f"--capacity-targets {args.capacity_targets!r}: a comma-separated subset of "
            "bare, pipeline, console"
        )
    return chosen


def _capacity_local(args: argparse.Namespace, refs: dict[str, str], out: Path) -> dict[str, Any]:
    """The capacity phase against containers on this machine, servers pinned away
    from the generator (bench/capacity_stack.py)."""
    from bench import capacity_stack

    plan = _capacity_plan(args)
    placement = capacity_stack.Placement(args.server_cpus)
    where = placement.describe(plan.generator_cpus)
    targets = _capacity_targets(args)
    say(
        f"capacity: {', '.join(targets)}; open-loop steps of {plan.seconds:g}s from "
        f"{plan.start_rps:g}/s ×{plan.factor:g} (≤{plan.max_steps} steps each); {where}"
    )
    results: dict[str, capacity.TargetResult] = {}
    with capacity_stack.servers(placement) as boxes:
        if "bare" in targets:
            addr = boxes.bare(refs["pipeline"])
            results["bare"] = capacity.measure(
                "bare", "health", addr, plan, out / "raw" / "capacity" / "bare", say
            )
            boxes.remove_all()
        if "pipeline" in targets or "console" in targets:
            addr = boxes.pipeline(refs["pipeline"])
            if "pipeline" in targets:
                results["pipeline"] = capacity.measure(
                    "pipeline", "get_dag", addr, plan, out / "raw" / "capacity" / "pipeline", say
                )
            if "console" in targets:
                url = boxes.console(refs["console"], addr)
                results["console"] = capacity.measure(
                    "console", "api_dag", url, plan, out / "raw" / "capacity" / "console", say
                )
    return capacity.section(plan, results, where)


def _capacity_remote(
    args: argparse.Namespace, out: Path, pipeline_target: str, console_url: str | None
) -> dict[str, Any]:
    """The capacity phase against a deployed environment: no bare server (nothing of
    ours to start there), users fixed at the environment's concurrency when given."""
    from bench import cloud

    users = 0
    where = "a deployed environment (generator on this machine)"
    if args.environment:
        env = cloud.environment_services(args.environment)
        users = env.services["pipeline"].concurrency
        where += f"; users = {args.environment}'s pipeline concurrency ({users})"
    plan = _capacity_plan(args, users)
    results: dict[str, capacity.TargetResult] = {}
    say(f"capacity against {pipeline_target}: {where}")
    results["pipeline"] = capacity.measure(
        "pipeline", "get_dag", pipeline_target, plan, out / "raw" / "capacity" / "pipeline", say
    )
    if console_url:
        if args.environment:
            console_users = cloud.environment_services(args.environment).services["console"]
            plan = _capacity_plan(args, console_users.concurrency)
        results["console"] = capacity.measure(
            "console", "api_dag", console_url, plan, out / "raw" / "capacity" / "console", say
        )
    return capacity.section(plan, results, where)


def _cloud_cold(args: argparse.Namespace) -> dict[str, Any]:
    """True cold starts of the deployed pipeline: each sample waits (bounded) until
    Cloud Monitoring reports zero instances, then times the first two Checks."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from bench import cloud
    from bench.targets import open_channel, with_auth

    if not args.environment:
        raise SystemExit("--cloud-cold-samples needs --environment ENV (its project, scaling)")
    env = cloud.environment_services(args.environment)
    cloud.require_scale_to_zero(env, "pipeline")
    monitoring = cloud.MonitoringClient(env.project, cloud.google_access_token)
    target = parse_grpc_target(args.pipeline_target)

    def first_two() -> tuple[int, int]:
        with open_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(with_auth(channel, target))
            request = health_pb2.HealthCheckRequest(service="")
            times = []
            for _ in range(2):
                t0 = time.perf_counter_ns()
                stub.Check(request, timeout=120)
                times.append((time.perf_counter_ns() - t0) // 1000)
        return times[0], times[1]

    samples = []
    for i in range(args.cloud_cold_samples):
        say(f"cloud cold {i + 1}/{args.cloud_cold_samples}: waiting for pipeline to scale to zero")
        sample = cloud.cold_sample(
            lambda: cloud.wait_for_zero(
                lambda: monitoring.instances("pipeline"),
                args.cold_max_wait,
                args.cold_poll,
                say=say,
            ),
            first_two,
        )
        samples.append(sample)
        say(
            f"  {'cold' if sample.reached_zero else 'NOT cold (wait timed out)'}: first Check "
            f"{sample.first_us / 1000:.0f} ms, second {sample.second_us / 1000:.1f} ms"
        )
    return cloud.cold_section("pipeline", samples, args.cold_max_wait)


def _plan(args: argparse.Namespace) -> warm.LoadPlan:
    weights = dict(warm.DEFAULT_WEIGHTS)
    for item in args.weight or []:
        key, _, value = item.partition("=")
        option = "weight_" + key.strip().replace("-", "_")
        if option not in weights or not value.strip().isdigit():
            raise SystemExit(
                f"--weight {item!r}: expected NAME=N, NAME one of "
                + ", ".join(k.removeprefix("weight_") for k in weights)
            )
        weights[option] = int(value)
    return warm.LoadPlan(
        users=args.users,
        console_users=min(args.console_users, args.users),
        seconds=args.seconds,
        warmup_s=args.warmup,
        wait_min=args.wait_min,
        wait_max=args.wait_max,
        run_rows=args.run_rows,
        weights=weights,
        min_calls=args.min_calls,
        max_seconds=args.max_seconds or 3.0 * args.seconds,
    )


def _calibration_plan(args: argparse.Namespace) -> warm.LoadPlan:
    # One user, GetDag only, no wait: the same shape as the plain loop, so the
    # ratio of the two is Locust's own overhead and nothing else.
    weights = {k: 0 for k in warm.DEFAULT_WEIGHTS}
    weights["weight_get_dag"] = 1
    return warm.LoadPlan(
        users=1,
        console_users=0,
        seconds=args.calibration_seconds,
        warmup_s=1,
        wait_min=0.0,
        wait_max=0.0,
        run_rows=0,
        weights=weights,
        classes=("PipelineUser",),
        min_calls=args.min_calls,
        max_seconds=3.0 * args.calibration_seconds,
    )


def _say_floor(hists: dict[str, Histogram]) -> None:
    for name, h in hists.items():
        say(
            f"  {name:<13} n={h.count:>6,}  p50 {report.fmt_us(h.value_at(50))}  "
            f"p99 {report.fmt_us(h.value_at(99))}"
        )


def _measure(
    args: argparse.Namespace, out: Path, pipeline_target: str, console_url: str | None
) -> dict[str, Any]:
    """Floor, calibration, warm load and large feed against running services.

    The floor loops bracket the Locust phases: half of each loop's budget runs
    before them, half after, and the halves are merged. On a shared machine the
    background load drifts over minutes; bracketing exposes numerator (Locust)
    and denominator (floor) to the same drift, which keeps the ratios steady.
    """
    target = parse_grpc_target(pipeline_target)
    half = floor.Bounds(
        max_calls=max(1, args.floor_calls // 2),
        max_seconds=args.floor_seconds / 2,
        wait_min=args.wait_min,
        wait_max=args.wait_max,
    )
    say(
        f"floor (first half): health Check, GetDag (tight and paced) and GET /api/dag loops "
        f"(≤{half.max_calls} calls, ≤{half.max_seconds:g}s each)"
    )
    floor_hists = floor.run(target, console_url, half)
    _say_floor(floor_hists)

    calibration = None
    if args.calibration_seconds > 0:
        cal = warm.run(
            _calibration_plan(args),
            pipeline_target,
            None,
            out / "raw" / "calibration",
            load_progress("calibration (Locust, 1 user, GetDag)"),
        )
        calibration = cal.recorder

    plan = _plan(args)
    classes = plan.classes if console_url else ("PipelineUser",)
    plan = warm.LoadPlan(**{**plan.to_json(), "classes": classes})
    result = warm.run(
        plan,
        pipeline_target,
        console_url,
        out / "raw" / "warm",
        load_progress(f"warm load ({plan.users} users)"),
    )
    warm_json = warm_section(result)

    say("floor (second half), merged with the first")
    for name, h in floor.run(target, console_url, half).items():
        floor_hists[name].merge(h)
    _say_floor(floor_hists)

    large = None
    if args.large_rows > 0 and console_url:
        from bench import large_feed

        with ticking(f"large feed: {args.large_rows:,} rows, library vs gRPC vs console", 30):
            large = large_feed.run(
                args.large_rows, target.addr, console_url, args.large_repeats, say
            ).to_json()
    return {
        "floor": floor_hists,
        "calibration": calibration,
        "warm": warm_json,
        "large": large,
        "plan": plan,
    }


def _portable(arg: str) -> str:
    """A command-line argument without this machine's absolute paths."""
    if arg == sys.executable:
        return "python"
    if arg.startswith("/"):
        path = Path(arg)
        return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name
    return arg


def warm_section(result: warm.LocustResult) -> dict[str, Any]:
    section = report.warm_section(result.recorder, result.stats)
    section["locust_command"] = [_portable(arg) for arg in result.command]
    return section


def _subject(args: argparse.Namespace, started: str) -> tuple[bool, dict[str, Any], dict[str, str]]:
    """What is measured: (remote, meta, local image refs). Remote targets must be on
    loopback unless --allow-remote; local ones are the images built for this tree."""
    if not args.pipeline_target:
        return (False, *_images(args))
    target = parse_grpc_target(args.pipeline_target)
    require_loopback("--pipeline-target", target.host, args.allow_remote)
    if args.console_url:
        require_loopback(
            "--console-url", urlsplit(args.console_url).hostname or "", args.allow_remote
        )
    commit, dirty = _head()
    remote_meta: dict[str, Any] = {
        "commit": commit,
        "tag": args.label or f"remote-{started.replace(':', '')}",
        "dirty": dirty,
        "images": None,
    }
    return True, remote_meta, {}


def _report_meta(started: str, target: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "bench-report",
        "created": started,
        "target": target,
        "commit": meta["commit"],
        "tag": meta["tag"],
        "dirty": meta["dirty"],
        # The bench code that measured (may differ from the images' commit).
        "bench_commit": "".join(_bench_head()),
    }


def _say_ratios(result: dict[str, Any]) -> None:
    for name, r in result["ratios"].items():
        say(f"  {name:<44} {r['value']:>9.3f}{'' if r['gated'] else '  (not gated)'}")


def cmd_run(args: argparse.Namespace) -> int:
    started = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    remote, meta, refs = _subject(args, started)
    out = Path(args.output) if args.output else RESULTS / meta["tag"]
    out.mkdir(parents=True, exist_ok=True)
    say(f"results → {out}")
    machine_info = machine.info(docker=not remote)

    cold_samples: list[dict[str, Any]] | None = None
    if not remote and args.cold_samples > 0:
        say(f"cold: {args.cold_samples} samples, fresh pipeline + console containers each")

        def show(i: int, s: cold.ColdSample) -> None:
            say(
                f"  cold {i}/{args.cold_samples}: SERVING {s.serving_s:.2f}s "
                f"(bare python {s.python_start_s:.2f}s), first GetDag "
                f"{report.fmt_us(s.first_rpc_us)}, console up {s.console_start_s:.2f}s, "
                f"first /api/dag {report.fmt_us(s.console_first_us)}"
            )

        samples = cold.run(refs["pipeline"], refs["console"], args.cold_samples, show)
        cold_samples = [s.to_json() for s in samples]

    cloud_cold: dict[str, Any] | None = None
    if remote and args.cloud_cold_samples > 0:
        cloud_cold = _cloud_cold(args)

    if remote:
        measured = _measure(args, out, args.pipeline_target, args.console_url)
        target_desc = f"{args.pipeline_target} + {args.console_url or 'no console'}"
    else:
        from harness import containers

        say("warm: starting one pipeline + console stack on loopback")
        stack = containers.start_stack(refs["pipeline"], refs["console"])
        try:
            measured = _measure(args, out, stack.pipeline.addr, stack.console.url)
        finally:
            stack.remove()
        target_desc = "local containers (host network, 127.0.0.1)"

    # A store of our own making: only against local containers (never a deployment's).
    store_section: dict[str, Any] | None = None
    store_raw: dict[str, Any] | None = None
    if not remote and args.store_runs > 0:
        store_section, store_raw = _store_phase(args, refs["pipeline"])

    capacity_section: dict[str, Any] | None = None
    if args.capacity_steps > 0:
        if remote:
            capacity_section = _capacity_remote(args, out, args.pipeline_target, args.console_url)
        else:
            capacity_section = _capacity_local(args, refs, out)

    # Another process busy on the same cores skews everything: say how busy it was.
    machine_info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    parameters = {
        "cold_samples": 0 if cold_samples is None else len(cold_samples),
        "load": measured["plan"].to_json(),
        "calibration_seconds": args.calibration_seconds,
        "floor": {"max_calls": args.floor_calls, "max_seconds": args.floor_seconds},
        "large_rows": args.large_rows,
        "large_repeats": args.large_repeats,
        "run_store": _store_parameters(args) if store_section else None,
        "capacity": capacity_section["plan"] if capacity_section else None,
    }
    result = report.assemble(
        meta=_report_meta(started, target_desc, meta),
        machine=machine_info,
        images=meta["images"],
        locust_version=warm.locust_version(),
        parameters=parameters,
        cold_samples=cold_samples,
        warm=measured["warm"],
        floor=measured["floor"],
        calibration=measured["calibration"],
        large_feed=measured["large"],
        run_store=store_section,
        capacity=capacity_section,
        cloud_cold=cloud_cold,
    )
    report.write(out, result, measured["floor"], store_raw)
    say(
        f"wrote {out / report.REPORT_JSON}, {report.REPORT_MD}, {report.CDF_PNG}, "
        f"{report.TIMELINE_PNG}"
    )
    _say_ratios(result)
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    """The run store phase alone: its own result folder, report.json with only that section."""
    started = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    if args.store_runs <= 0:
        raise SystemExit("--store-runs must be positive for `store`")
    meta, ref = _pipeline_image(args)
    out = Path(args.output) if args.output else RESULTS / f"{meta['tag']}-store"
    out.mkdir(parents=True, exist_ok=True)
    say(f"results → {out}")
    machine_info = machine.info(docker=True)
    section, raw = _store_phase(args, ref)
    machine_info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result = report.assemble(
        meta=_report_meta(
            started, "local pipeline containers (host network, 127.0.0.1), run store only", meta
        ),
        machine=machine_info,
        images=meta["images"],
        locust_version=warm.locust_version(),
        parameters={"run_store": _store_parameters(args)},
        cold_samples=None,
        warm=None,
        floor=None,
        calibration=None,
        large_feed=None,
        run_store=section,
    )
    report.write(out, result, None, raw)
    say(f"wrote {out / report.REPORT_JSON}, {report.REPORT_MD}")
    _say_ratios(result)
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    """The capacity phase alone: its own result folder and report."""
    started = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    if args.capacity_steps <= 0:
        raise SystemExit("--capacity-steps must be positive for `capacity`")
    remote, meta, refs = _subject(args, started)
    out = Path(args.output) if args.output else RESULTS / f"{meta['tag']}-capacity"
    out.mkdir(parents=True, exist_ok=True)
    say(f"results → {out}")
    machine_info = machine.info(docker=not remote)
    if remote:
        section = _capacity_remote(args, out, args.pipeline_target, args.console_url)
        target_desc = f"{args.pipeline_target} + {args.console_url or 'no console'}, capacity only"
    else:
        section = _capacity_local(args, refs, out)
        target_desc = "local containers (host network, 127.0.0.1), capacity only"
    machine_info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result = report.assemble(
        meta=_report_meta(started, target_desc, meta),
        machine=machine_info,
        images=meta["images"],
        locust_version=warm.locust_version(),
        parameters={"capacity": section["plan"]},
        cold_samples=None,
        warm=None,
        floor=None,
        calibration=None,
        large_feed=None,
        capacity=section,
    )
    report.write(out, result, None)
    say(f"wrote {out / report.REPORT_JSON}, {report.REPORT_MD}, {capacity_report.CAPACITY_PNG}")
    for name, t in section["targets"].items():
        bound = " (lower bound: generator-bound or never broke)" if t["knee_is_lower_bound"] else ""
        say(f"  knee {name:<9} {t['knee_rps']:>8g}/s{bound}")
    return 0


def _capacity_options(p: argparse.ArgumentParser, steps_default: int) -> None:
    server_cpus, generator_cpus = _default_placement()
    g = p.add_argument_group("capacity (open-loop steps, bench/capacity.py)")
    g.add_argument(
        "--capacity-steps",
        type=int,
        default=steps_default,
        help=f"max steps per target ({steps_default}; 0 skips the phase in run)",
    )
    g.add_argument("--capacity-seconds", type=float, default=4.0, help="measured s per step (4)")
    g.add_argument("--capacity-warmup", type=float, default=1.0, help="warm-up s per step (1)")
    g.add_argument("--capacity-start", type=float, default=50.0, help="first offered rate (50/s)")
    g.add_argument("--capacity-factor", type=float, default=1.5, help="rate × per step (1.5)")
    g.add_argument("--capacity-max-rps", type=float, default=20_000.0, help="rate bound")
    g.add_argument(
        "--capacity-p99-calls",
        type=int,
        default=500,
        help="low-rate steps last until they hold this many calls (500), at most 10 s",
    )
    g.add_argument("--slo-grpc-ms", type=float, default=10.0, help="gRPC p99 SLO (10 ms)")
    g.add_argument("--slo-http-ms", type=float, default=25.0, help="HTTP p99 SLO (25 ms)")
    g.add_argument(
        "--capacity-max-error-rate", type=float, default=0.001, help="errors a step may have"
    )
    g.add_argument(
        "--capacity-processes", type=int, default=1, help="Locust --processes per step (1)"
    )
    g.add_argument(
        "--capacity-users",
        type=int,
        default=0,
        help="users per step (default: from the rate and SLO; --environment: its concurrency)",
    )
    g.add_argument(
        "--capacity-targets",
        default="bare,pipeline,console",
        help="which to measure, of bare,pipeline,console (all)",
    )
    g.add_argument(
        "--server-cpus",
        default=server_cpus,
        help=f"cpuset of the server containers ({server_cpus or 'unpinned'})",
    )
    g.add_argument(
        "--generator-cpus",
        default=generator_cpus,
        help=f"CPUs Locust is pinned to ({generator_cpus or 'unpinned'})",
    )
    g.add_argument(
        "--environment",
        help="against a deployed environment: users = its services' concurrency (envctl)",
    )


def _default_placement() -> tuple[str, str]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "", ""
    return str(cpus[-1]), ",".join(str(c) for c in cpus[:-1])


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store-runs",
        type=int,
        default=run_store.RUNS,
        help=f"runs seeded in the large run store ({run_store.RUNS:,}; 0 skips the phase in run)",
    )
    p.add_argument(
        "--store-small-runs",
        type=int,
        default=run_store.SMALL_RUNS,
        help=f"runs in the small store it is compared with ({run_store.SMALL_RUNS})",
    )
    p.add_argument(
        "--store-seconds",
        type=float,
        default=run_store.MAX_SECONDS,
        help=f"max seconds per call and store ({run_store.MAX_SECONDS:g})",
    )
    p.add_argument(
        "--store-calls",
        type=int,
        default=run_store.MAX_CALLS,
        help=f"max calls per call and store ({run_store.MAX_CALLS})",
    )


# --- compare / report -------------------------------------------------------


def cmd_compare(args: argparse.Namespace) -> int:
    try:
        current = report.load(Path(args.result))
        baseline = report.load(Path(args.baseline))
        verdicts = ratios.judge(baseline["ratios"], current["ratios"], args.threshold)
    except (OSError, ValueError, KeyError) as err:
        print(f"bench compare: {err}", file=sys.stderr)
        return 2
    print(
        f"baseline {baseline['tag']} ({baseline['created']}) vs {current['tag']} "
        f"({current['created']}), threshold +{args.threshold:.0%}"
    )
    print(ratios.render_verdicts(verdicts, args.threshold))
    differences = ratios.parameter_differences(
        baseline.get("parameters") or {}, current.get("parameters") or {}
    )
    if differences:
        print(
            "warning: the runs were made with different parameters, so their ratios "
            "are not strictly comparable:\n  " + "\n  ".join(differences),
            file=sys.stderr,
        )
    return 1 if any(v.status == "regressed" for v in verdicts) else 0


def cmd_comment(args: argparse.Namespace) -> int:
    """The ratio table as one pull request comment, edited in place (bench.yml)."""
    from bench import pr_comment

    try:
        current = report.load(Path(args.result))
        baseline = report.load(Path(args.baseline))
        verdicts = ratios.judge(baseline["ratios"], current["ratios"], args.threshold)
    except (OSError, ValueError, KeyError) as err:
        print(f"bench comment: {err}", file=sys.stderr)
        return 2
    text = pr_comment.body(
        verdicts,
        args.threshold,
        current,
        baseline,
        args.run_url,
        ratios.parameter_differences(
            baseline.get("parameters") or {}, current.get("parameters") or {}
        ),
    )
    if args.pr is None:
        print(text, end="")
        return 0
    from envctl.ci.github import GitHub, GitHubError

    try:
        action, comment_id = GitHub.from_env().upsert_comment(args.pr, pr_comment.MARKER, text)
    except GitHubError as err:
        print(f"bench comment: {err}", file=sys.stderr)
        return 1
    print(f"{action} comment {comment_id} on #{args.pr}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    for path in report.render(Path(args.result), recompute=args.recompute):
        print(path)
    return 0


def cmd_hist(args: argparse.Namespace) -> int:
    """Percentiles of a stock `locust -f bench/locustfile.py` run (any number of
    processes or machines: put their hist-*.json files in one folder)."""
    from bench.recorder import load_dir

    try:
        merged = load_dir(Path(args.folder))
    except (OSError, ValueError) as err:
        print(f"bench hist: {err}", file=sys.stderr)
        return 2
    window = merged.window_seconds
    print(
        f"{'name':<14} {'calls':>8} {'rps':>8} {'p50':>10} {'p90':>10} {'p95':>10} "
        f"{'p99':>10} {'max':>10}  errors"
    )
    for name, stats in sorted(merged.methods.items()):
        h = stats.histogram
        cols = [report.fmt_us(h.value_at(p)) if h.count else "-" for p in (50, 90, 95, 99)]
        codes = ", ".join(f"{c} x{n}" for c, n in sorted(stats.errors.items())) or "-"
        rps = f"{stats.calls / window:.1f}" if window else "-"
        print(
            f"{name:<14} {stats.calls:>8,} {rps:>8} "
            + " ".join(f"{c:>10}" for c in cols)
            + f" {report.fmt_us(h.max) if h.count else '-':>10}  {codes}"
        )
    print(f"window {window:.1f}s after warm-up; latency of successful calls, µs resolution")
    return 0


def parser(profile: str = "full") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="cold + warm + floor + large feed, then write the report")
    r.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="full",
        help="full (the defaults, as the baseline) or quick (bench.yml: shorter phases, "
        "the same feed sizes and gates); options given explicitly win",
    )
    r.add_argument("--output", help="result folder (default bench/results/<image tag>)")
    r.add_argument(
        "--allow-dirty", action="store_true", help="build from a dirty tree (tag <sha>-dirty)"
    )
    r.add_argument("--pipeline-image", help="use this pipeline image instead of building")
    r.add_argument("--console-image", help="use this console image instead of building")
    r.add_argument("--cold-samples", type=int, default=5, help="fresh-container samples (5)")
    r.add_argument("--users", type=int, default=4, help="Locust users in the warm phase (4)")
    r.add_argument("--console-users", type=int, default=1, help="of which ConsoleUser (1)")
    r.add_argument("--seconds", type=int, default=20, help="measured warm seconds (20)")
    r.add_argument("--warmup", type=int, default=5, help="warm-up seconds, excluded (5)")
    r.add_argument(
        "--min-calls",
        type=int,
        default=10,
        help="the warm and calibration windows last until every weighted task has this many "
        "calls (10; 0: by the clock alone), at most --max-seconds",
    )
    r.add_argument(
        "--max-seconds",
        type=float,
        default=0.0,
        help="bound of the warm window with --min-calls (default 3 x --seconds)",
    )
    r.add_argument("--wait-min", type=float, default=0.05, help="per-user pause min, s (0.05)")
    r.add_argument("--wait-max", type=float, default=0.2, help="per-user pause max, s (0.2)")
    r.add_argument(
        "--weight",
        action="append",
        metavar="NAME=N",
        help="task weight, e.g. run_pipeline=0, get_dag=20 (repeatable)",
    )
    r.add_argument(
        "--run-rows", type=int, default=2000, help="rows of the small RunPipeline feed (2000)"
    )
    r.add_argument("--floor-seconds", type=float, default=5.0, help="max seconds per floor loop")
    r.add_argument("--floor-calls", type=int, default=5000, help="max calls per floor loop")
    r.add_argument(
        "--calibration-seconds", type=int, default=5, help="Locust 1-user GetDag seconds (0 skips)"
    )
    r.add_argument(
        "--large-rows",
        type=int,
        default=1_000_000,
        help="stop_times rows of the large-feed case (0 skips)",
    )
    r.add_argument("--large-repeats", type=int, default=1, help="large-feed rounds (median)")
    r.add_argument("--pipeline-target", help="bench a running pipeline (host:port or https URL)")
    r.add_argument("--console-url", help="and its console (http(s)://host[:port])")
    r.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow non-loopback targets (a deployed environment)",
    )
    r.add_argument("--label", help="result folder name for --pipeline-target runs")
    r.add_argument(
        "--cloud-cold-samples",
        type=int,
        default=0,
        help="with --pipeline-target https://… and --environment: true cold starts, each "
        "after the service scaled to zero (min_instances: 0 only; 0 skips)",
    )
    r.add_argument(
        "--cold-max-wait",
        type=float,
        default=30 * 60.0,
        help="longest wait for zero instances per cloud cold sample, s (1800)",
    )
    r.add_argument(
        "--cold-poll", type=float, default=60.0, help="instance count poll interval, s (60)"
    )
    _store_options(r)
    _capacity_options(r, steps_default=10)
    r.set_defaults(func=cmd_run, **PROFILES[profile])

    cap = sub.add_parser(
        "capacity",
        help="only the capacity phase: bare grpcio, GetDag, GET /api/dag, open-loop steps",
    )
    cap.add_argument("--output", help="result folder (default bench/results/<tag>-capacity)")
    cap.add_argument(
        "--allow-dirty", action="store_true", help="build from a dirty tree (tag <sha>-dirty)"
    )
    cap.add_argument("--pipeline-image", help="use this pipeline image instead of building")
    cap.add_argument("--console-image", help="use this console image instead of building")
    cap.add_argument("--pipeline-target", help="a running pipeline (host:port or https URL)")
    cap.add_argument("--console-url", help="and its console (http(s)://host[:port])")
    cap.add_argument("--allow-remote", action="store_true", help="allow non-loopback targets")
    cap.add_argument("--label", help="result folder name for --pipeline-target runs")
    _capacity_options(cap, steps_default=10)
    cap.set_defaults(func=cmd_capacity)

    st = sub.add_parser(
        "store", help="only the run store phase: GetRun/ListRuns, 10,000 runs vs 40, containers"
    )
    st.add_argument("--output", help="result folder (default bench/results/<image tag>-store)")
    st.add_argument(
        "--allow-dirty", action="store_true", help="build from a dirty tree (tag <sha>-dirty)"
    )
    st.add_argument("--pipeline-image", help="use this pipeline image instead of building")
    _store_options(st)
    st.set_defaults(func=cmd_store)

    c = sub.add_parser("compare", help="exit 1 when a gated ratio regressed past the threshold")
    c.add_argument("result", help="result folder or its report.json")
    c.add_argument("--baseline", default=str(BASELINE), help="default bench/results/baseline")
    c.add_argument(
        "--threshold",
        type=float,
        default=ratios.DEFAULT_THRESHOLD,
        help=f"allowed growth of a ratio (default {ratios.DEFAULT_THRESHOLD})",
    )
    c.set_defaults(func=cmd_compare)

    cm = sub.add_parser(
        "comment", help="the compare table as a PR comment (edited in place), or on stdout"
    )
    cm.add_argument("result", help="result folder or its report.json")
    cm.add_argument("--baseline", default=str(BASELINE), help="default bench/results/baseline")
    cm.add_argument("--threshold", type=float, default=ratios.DEFAULT_THRESHOLD)
    cm.add_argument("--pr", type=int, help="pull request number (GITHUB_REPOSITORY, GITHUB_TOKEN)")
    cm.add_argument("--run-url", help="the workflow run holding the report artifact")
    cm.set_defaults(func=cmd_comment)

    h = sub.add_parser("hist", help="percentiles from a stock Locust run's hist-*.json files")
    h.add_argument("folder", help="the --bench-hist-dir of the run")
    h.set_defaults(func=cmd_hist)

    rep = sub.add_parser("report", help="re-render report.md and charts from report.json + raw/")
    rep.add_argument("result")
    rep.add_argument(
        "--recompute",
        action="store_true",
        help="derive the ratios again with the current definitions (rewrites report.json)",
    )
    rep.set_defaults(func=cmd_report)
    return p


#: Defaults per `run --profile`. Quick keeps what the gated ratios depend on (the
#: 1,000,000-row feed, 10,000 runs in the store, the warm load's shape) and
#: shortens what only narrows their noise (samples, windows, capacity steps).
PROFILES: dict[str, dict[str, Any]] = {
    "full": {},
    "quick": {
        "cold_samples": 3,
        "seconds": 10,
        "warmup": 3,
        "floor_seconds": 3.0,
        "calibration_seconds": 3,
        "store_seconds": 1.5,
        "capacity_seconds": 2.0,
        "capacity_warmup": 0.5,
        "capacity_factor": 2.0,
        "capacity_steps": 8,
    },
}


def main(argv: list[str] | None = None) -> int:
    first = parser().parse_args(argv)
    # Again with the profile's values as the run's defaults: explicit options still win.
    args = parser(first.profile).parse_args(argv) if first.command == "run" else first
    if args.command in ("run", "capacity") and bool(args.pipeline_image) != bool(
        args.console_image
    ):
        parser().error("--pipeline-image and --console-image go together")
    try:
        code: int = args.func(args)
    except TargetError as err:
        print(f"bench: {err}", file=sys.stderr)
        return 2
    except (
        cold.ColdStartFailed,
        warm.LocustFailed,
        run_store.StorePhaseFailed,
        capacity.CapacityFailed,
    ) as err:
        print(f"bench: {err}", file=sys.stderr)
        return 1
    return code
