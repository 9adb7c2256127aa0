"""``python -m envctl.ci COMMAND``: the deploy steps the workflows run.

    environments [ENV...]             cloud environments (or just these), in promotion order
    changed --base REV [--head REV]   cloud environments base..head changes, in promotion order
    gate ENV [--base REV]             may ENV be deployed now (freeze: known good or override)?
    smoke ENV --url URL               smoke check of ENV's console (token from $SMOKE_ID_TOKEN)
    metrics-check ENV --outputs F     new revisions' error ratio and p95 from Cloud Monitoring
                                      (token from $MONITORING_TOKEN; --evidence FILE for record)
    plan-summary PLAN_JSON            what a plan does, as markdown
    plan-check REVIEWED CURRENT       refuse when the plan changed since review
    plan-verdict ENV --current F      is the deploy's plan the reviewed one? (else: fresh)
    fresh-plans DIR                   the fresh plans a person must approve (from verdicts)
    pr-comment ENV --diff F --plan F  the PR comment (``--pr N`` posts it, edited in place)
    reviewed-run --sha SHA            the plan.yml run that planned the PR merged as SHA
    drift ENV --exitcode N            drift report, or "pending" when the record shows HEAD's
                                      release not deployed yet (``--sync``: the issue)
    rollout-steps ENV                 the gradual rollout's steps ([] when none is configured)
    rollout ENV --stack DIR --vars F --console-url URL   run those steps with smoke checks
    service-url --outputs F --service NAME               a URL from ``tofu output -json``
    publish --env ENV                 push built images once per tag; read back digests
    registry ENV                      ENV's registry and its host (for docker/crane login)
    copy-images ENV                   copy ENV's images into its registry by digest
    failed [--commit SHA]             environments whose newest deploy record at SHA is failed
    smoke-failures DIR                environments whose smoke check failed (from artifacts)
    lock ENV --pr N --commit SHA      claim ENV for PR N; refuse when another open PR holds it
    lock-release --pr N --keep JSON   release N's locks of environments it no longer changes
    record-tag ENV                    ENV's newest deploy record on HEAD (outputs: tag, result)
    deployment ENV --result R --record-tag TAG   mirror a deploy record to GitHub Deployments
    canary ENV --url URL              the reference feeds through the new pipeline, compared
                                      with the last succeeded release's canary outputs

Results go to stdout (``--json`` for JSON) and, inside GitHub Actions, to step outputs
named in each command's help. Exit status: 0 ok, 1 failure or refusal (one line per
problem on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from envctl import canary, gitrepo
from envctl.ci import canary as canary_run
from envctl.ci import (
    changed,
    deployment,
    drift,
    freshplan,
    gate,
    images,
    lock,
    metrics,
    plan,
    rollout,
)
from envctl.ci.comment import load_diff, marker, plan_comment
from envctl.ci.github import GitHub, GitHubError
from envctl.ci.outputs import add_summary, set_output
from envctl.ci.smoke import SmokeReport, smoke
from envctl.errors import EnvctlError
from envctl.freeze import now_utc
from envctl.load import find_repo_root, load_environment
from envctl.records import read_records

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
TOKEN_VARIABLE = "SMOKE_ID_TOKEN"  # noqa: S105 (the name of a variable, not a token)
MONITORING_TOKEN_VARIABLE = "MONITORING_TOKEN"  # noqa: S105 (likewise)
# What a command reports as one line on stderr instead of a traceback.
EXPECTED = (
    EnvctlError,
    plan.PlanError,
    GitHubError,
    images.ImageError,
    drift.NoiseError,
    metrics.MetricsError,
    ValueError,
    KeyError,
    OSError,
    RuntimeError,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"envctl.ci: {message} (see: python -m envctl.ci --help)\n")


Handler = Callable[[argparse.Namespace], int]


def _root(args: argparse.Namespace) -> Path:
    return find_repo_root(args.repo)


def _emit(args: argparse.Namespace, value: Any, text: str) -> None:
    if args.json:
        sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")
    elif text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _environments(args: argparse.Namespace) -> int:
    names = changed.cloud_environments(_root(args))
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            known = ", ".join(names)
            raise ValueError(f"{unknown[0]!r} is not a cloud environment (cloud: {known})")
        names = [n for n in names if n in args.only]
    set_output("environments", json.dumps(names))
    _emit(args, names, json.dumps(names))
    return EXIT_OK


def _changed(args: argparse.Namespace) -> int:
    names = changed.changed_environments(_root(args), args.base or None, args.head)
    set_output("environments", json.dumps(names))
    set_output("any", "true" if names else "false")
    _emit(args, names, json.dumps(names))
    return EXIT_OK


def _gate(args: argparse.Namespace) -> int:
    decision = gate.decide(_root(args), args.env, now_utc(), args.base or None, args.head)
    set_output("allowed", "true" if decision.allowed else "false")
    if not decision.allowed:
        sys.stderr.write(decision.reason + "\n")
        add_summary(f"⛔ {decision.reason}")
    _emit(args, decision.as_dict(), decision.reason if decision.allowed else "")
    return EXIT_OK if decision.allowed else EXIT_FAIL


def _smoke_with(args: argparse.Namespace) -> Callable[[str, dict[str, str]], SmokeReport]:
    token = os.environ.get(args.token_env) or None

    def run(url: str, expect: dict[str, str]) -> SmokeReport:
        return smoke(url, token, expect, ready_timeout=args.timeout, interval=args.interval)

    return run


def _smoke(args: argparse.Namespace) -> int:
    root = _root(args)
    env = load_environment(root, args.env)
    expect = {} if args.no_expect else rollout.expected_commits(env, None, False)
    report = _smoke_with(args)(args.url, expect)
    return _smoke_done(args, report.as_dict(), report.to_markdown(), report.ok)


def _smoke_done(args: argparse.Namespace, value: Any, text: str, ok: bool) -> int:
    add_summary(text)
    set_output("ok", "true" if ok else "false")
    if args.report:
        # smoke-failures reads "environment" back from these files in a later job.
        # envctl record stores it as verification evidence, which needs a "kind".
        saved = {"kind": "smoke", "environment": args.env, "ok": ok, "report": value}
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    _emit(args, value, text)
    if not ok:
        sys.stderr.write(f"envctl.ci: smoke check of {args.env} failed\n")
    return EXIT_OK if ok else EXIT_FAIL


def _log_line(text: str) -> None:
    """A line of the workflow log (stdout), at once: the query before its answer."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _metrics_check(args: argparse.Namespace) -> int:
    env = load_environment(_root(args), args.env)
    revisions = dict(r.split("=", 1) for r in args.revision or [])
    if args.outputs:
        outputs = json.loads(Path(args.outputs).read_text(encoding="utf-8"))
        revisions = {**metrics.revisions_from_outputs(outputs), **revisions}
    if not revisions:
        raise ValueError("name the new revisions: --outputs FILE or --revision SERVICE=REVISION")
    token = os.environ.get(args.token_env)
    if not token:
        raise ValueError(f"${args.token_env} holds no access token for Cloud Monitoring")
    if env.project is None:
        raise ValueError(f"{env.file}: {env.name} is not a cloud environment: no metrics to check")
    api = metrics.PrometheusApi(env.project, token, _log_line, args.api)
    report = metrics.check(env, revisions, api, now_utc, args.wait, args.poll)
    text = report.to_markdown()
    add_summary(text)
    set_output("ok", "true" if report.ok else "false")
    if args.evidence:
        Path(args.evidence).write_text(json.dumps(report.as_dict(), indent=2) + "\n", "utf-8")
    _emit(args, report.as_dict(), text)
    if not report.ok:
        sys.stderr.write(f"envctl.ci: metrics check of {args.env} failed\n")
    return EXIT_OK if report.ok else EXIT_FAIL


def _plan_summary(args: argparse.Namespace) -> int:
    summary = plan.summarize(plan.load_plan(args.plan))
    set_output("changes", "false" if summary.empty else "true")
    _emit(args, summary.as_dict(), summary.to_markdown())
    return EXIT_OK


def _plan_check(args: argparse.Namespace) -> int:
    found = plan.differences(plan.load_plan(args.reviewed), plan.load_plan(args.current))
    if found:
        lines = ["the plan changed since it was reviewed on the pull request; refusing to apply:"]
        lines += [f"  {d}" for d in found]
        lines.append(
            "re-run deploy.yml: it plans again and asks for approval of the fresh plan "
            "(the fresh-plan environment)"
        )
        sys.stderr.write("\n".join(lines) + "\n")
        add_summary("⛔ " + "\n".join(lines))
    _emit(args, {"same": not found, "differences": found}, "" if found else "same plan as reviewed")
    return EXIT_FAIL if found else EXIT_OK


def _plan_verdict(args: argparse.Namespace) -> int:
    # No reviewed run (dispatch, or a push from no planned PR): nothing was reviewed.
    reviewed = args.reviewed if args.reviewed_run.strip() else None
    found = freshplan.verdict(args.env, args.current, reviewed)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(found.as_dict(), indent=2) + "\n", encoding="utf-8")
    set_output("fresh", "true" if found.fresh else "false")
    text = found.to_markdown()
    add_summary(text)
    _emit(args, found.as_dict(), text)
    return EXIT_OK


def _fresh_plans(args: argparse.Namespace) -> int:
    verdicts = freshplan.load_verdicts(args.dir)
    if args.expect:
        expected = json.loads(args.expect)
        missing = sorted(set(expected) - {v.environment for v in verdicts})
        if missing:
            raise ValueError(f"{args.dir}: no plan verdict for {', '.join(missing)}")
    fresh = [v.environment for v in verdicts if v.fresh]
    set_output("any", "true" if fresh else "false")
    set_output("environments", json.dumps(fresh))
    text = freshplan.fresh_summary(verdicts)
    add_summary(text)
    _emit(args, [v.as_dict() for v in verdicts], text)
    return EXIT_OK


def _pr_comment(args: argparse.Namespace) -> int:
    diff = load_diff(args.diff) if args.diff else None
    summary = plan.summarize(plan.load_plan(args.plan)) if args.plan else None
    error = (
        args.plan_error.read_text(encoding="utf-8", errors="replace") if args.plan_error else None
    )
    body = plan_comment(
        args.env, diff, summary, commit=args.commit, run_url=args.run_url, plan_error=error
    )
    if args.pr is not None:
        action, comment_id = GitHub.from_env().upsert_comment(
            args.pr, marker("plan", args.env), body
        )
        sys.stderr.write(f"comment {comment_id} {action} on #{args.pr}\n")
    _emit(args, {"body": body}, body)
    return EXIT_OK


def _reviewed_run(args: argparse.Namespace) -> int:
    found = GitHub.from_env().reviewed_run(args.sha, args.workflow)
    if found is None and args.optional:
        set_output("run_id", "")
        set_output("pull_request", "")
        text = f"{args.sha[:12]}: no reviewed plan; every plan goes to the fresh-plan approval"
        add_summary(text)
        _emit(args, None, text)
        return EXIT_OK
    if found is None:
        sys.stderr.write(
            f"envctl.ci: {args.sha[:12]} has no successful {args.workflow} run of a merged pull "
            "request: nothing was reviewed, so nothing is applied (dispatch deploy.yml to "
            "plan and apply with the environment's approval)\n"
        )
        return EXIT_FAIL
    set_output("run_id", str(found.run_id))
    set_output("pull_request", str(found.pull_request))
    value = {
        "run_id": found.run_id,
        "pull_request": found.pull_request,
        "head_sha": found.head_sha,
        "url": found.url,
    }
    _emit(args, value, f"run {found.run_id} planned #{found.pull_request} at {found.head_sha[:12]}")
    return EXIT_OK


def _drift(args: argparse.Namespace) -> int:
    if args.exitcode == drift.PLAN_FAILED or args.exitcode not in {0, 1, 2}:
        sys.stderr.write(
            f"envctl.ci: tofu plan for {args.env} failed (exit {args.exitcode}); drift unknown, "
            "issues left as they are\n"
        )
        return EXIT_FAIL
    noise = drift.load_noise(args.noise)
    data = plan.load_plan(args.plan) if args.exitcode == drift.DRIFTED else None
    if args.exitcode == drift.DRIFTED and data is None:
        raise ValueError("--plan is required when the exit code is 2")
    waiting = drift.pending(_root(args), args.env) if data is not None else None
    report = drift.analyse(args.env, data, noise, waiting)
    value = report.as_dict()
    if args.sync:
        action, number = drift.sync(GitHub.from_env(), report, args.run_url)
        value["issue"] = {"action": action, "number": number}
        sys.stderr.write(f"drift issue for {args.env}: {action} {number or ''}\n".rstrip() + "\n")
    set_output("drift", "true" if report.has_drift else "false")
    set_output("pending", "true" if report.is_pending else "false")
    if report.has_drift:
        text = report.body(args.run_url)
        add_summary(text)
    elif report.is_pending:
        text = report.pending_text()
        add_summary(f"⏳ {text}")
    else:
        text = f"no drift in {args.env}"
        add_summary(f"✅ {text}")
    _emit(args, value, text)
    return EXIT_OK


def _rollout_steps(args: argparse.Namespace) -> int:
    env = load_environment(_root(args), args.env)
    found = [s.as_dict() for s in rollout.steps(env)]
    set_output("rollout", "true" if found else "false")
    _emit(
        args, found, "\n".join(s["description"] for s in found) or f"{args.env}: no gradual rollout"
    )
    return EXIT_OK


def _rollout(args: argparse.Namespace) -> int:
    root = _root(args)
    env = load_environment(root, args.env)
    rendered = json.loads(args.vars.read_text(encoding="utf-8"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    verify = None
    if args.canary_report and canary.settings(env) is None:
        _no_canary(args.env, env.file, args.canary_report)
    elif args.canary_report:
        token = os.environ.get(args.token_env) or None

        def verify(url: str) -> bool:
            report = _run_canary(root, args.env, url, token, 300.0, None)
            _canary_done(args.env, report, args.canary_report)
            return report.ok

        if not rollout.canary_reaches_pipeline(env):
            raise ValueError(
                f"{env.file}: the data canary cannot reach the new pipeline during this "
                "rollout (roll the console out too)"
            )
    results = rollout.execute(
        env,
        rendered,
        args.stack,
        args.workdir,
        args.console_url,
        _smoke_with(args),
        verify=verify,
    )
    ok = bool(results) and all(r.ok for r in results)
    text = "".join(
        f"step {r.step.index}: {r.step.describe()}\n{r.report.to_markdown()}\n" for r in results
    )
    return _smoke_done(args, [r.as_dict() for r in results], text or "no steps\n", ok)


def _service_url(args: argparse.Namespace) -> int:
    outputs = json.loads(args.outputs.read_text(encoding="utf-8") or "{}")
    url = rollout.service_url(outputs, args.service)
    set_output("url", url)
    _emit(args, {"service": args.service, "url": url}, url)
    return EXIT_OK


def _publish(args: argparse.Namespace) -> int:
    env = load_environment(_root(args), args.env)
    if env.registry is None:
        raise ValueError(f"{env.file}: {args.env} has no registry (platform {env.platform})")
    published = images.publish(env.registry, args.manifest, args.service or list(env.services))
    for p in published:
        set_output(f"{p.service}_digest", p.digest)
        set_output(f"{p.service}_ref", p.ref)
        note = "pushed" if p.pushed else "already in the registry; not pushed again"
        add_summary(f"- `{p.ref}` `{p.digest}` ({note})")
    commit = images.load_build(args.manifest)["commit"]
    set_output("commit", str(commit))
    text = "".join(
        f"{p.ref}@{p.digest} {'pushed' if p.pushed else '(already there)'}\n" for p in published
    )
    _emit(args, [p.as_dict() for p in published], text)
    return EXIT_OK


def _registry(args: argparse.Namespace) -> int:
    env = load_environment(_root(args), args.env)
    if env.registry is None:
        raise ValueError(f"{env.file}: {args.env} has no registry (platform {env.platform})")
    host = env.registry.split("/", 1)[0]
    set_output("registry", env.registry)
    set_output("host", host)
    _emit(args, {"registry": env.registry, "host": host}, env.registry)
    return EXIT_OK


def _copy_images(args: argparse.Namespace) -> int:
    copies = images.ensure_images(_root(args), args.env)
    text = "".join(
        f"{c.target} {c.digest} " + (f"copied from {c.source}\n" if c.source else "present\n")
        for c in copies
    )
    _emit(args, [c.as_dict() for c in copies], text)
    return EXIT_OK


def _failed(args: argparse.Namespace) -> int:
    """Cloud environments whose newest deploy record, at ``--commit``, says failed."""
    root = _root(args)
    commit = gitrepo.git(root, "rev-parse", "--verify", f"{args.commit}^{{commit}}").strip()
    names = []
    for name in changed.cloud_environments(root):
        found = read_records(root, name)
        if found and found[0].commit == commit and not found[0].succeeded:
            names.append(name)
    set_output("environments", json.dumps(names))
    set_output("environment", names[0] if names else "")
    _emit(args, names, json.dumps(names))
    return EXIT_OK


def _smoke_failures(args: argparse.Namespace) -> int:
    names: list[str] = []
    for report in sorted(args.dir.rglob("*.json")) if args.dir.is_dir() else []:
        data = json.loads(report.read_text(encoding="utf-8"))
        name = data.get("environment") if isinstance(data, dict) else None
        if isinstance(name, str) and name not in names:
            names.append(name)
    set_output("environments", json.dumps(names))
    set_output("environment", names[0] if names else "")
    _emit(args, names, json.dumps(names))
    return EXIT_OK


def _lock(args: argparse.Namespace) -> int:
    gh = GitHub.from_env()
    decision = lock.acquire(gh, args.env, args.pr, args.commit, args.bot, args.settle)
    set_output("held", "true" if decision.held else "false")
    set_output("holder", str(decision.holder.pull_request))
    if not decision.held:
        body = lock.refused_comment(decision, args.commit, args.run_url)
        gh.upsert_comment(args.pr, marker("plan", args.env), body)
        sys.stderr.write(f"envctl.ci: {decision.message()}\n")
        add_summary(f"🔒 {decision.message()}")
    _emit(args, decision.as_dict(), decision.message())
    return EXIT_OK if decision.held else EXIT_FAIL


def _lock_release(args: argparse.Namespace) -> int:
    keep = json.loads(args.keep or "[]")
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise ValueError(f"--keep {args.keep!r}: expected a JSON list of environment names")
    released = lock.release(GitHub.from_env(), args.pr, keep, args.bot)
    set_output("released", json.dumps(released))
    _emit(args, released, "released: " + (", ".join(released) or "nothing"))
    return EXIT_OK


def _record_tag(args: argparse.Namespace) -> int:
    found = deployment.record_at(_root(args), args.env, args.rev)
    set_output("tag", found.tag if found else "")
    set_output("result", found.result if found else "")
    value = {"tag": found.tag, "result": found.result} if found else None
    _emit(
        args,
        value,
        f"{found.tag} {found.result}" if found else f"no record of {args.env} on {args.rev}",
    )
    return EXIT_OK


def _deployment(args: argparse.Namespace) -> int:
    sha = deployment.record_commit(_root(args), args.record_tag, args.env)
    done = deployment.mirror(
        GitHub.from_env(), args.env, sha, args.record_tag, args.result, args.run_url
    )
    set_output("deployment_id", str(done.deployment_id))
    what = "created" if done.created else "already there"
    status = f"status {done.status} " + ("added" if done.status_added else "already set")
    _emit(args, done.as_dict(), f"deployment {done.deployment_id} {what}; {status}")
    return EXIT_OK


def _run_canary(
    root: Path, name: str, url: str, token: str | None, timeout: float, baseline_path: Path | None
) -> canary.Report:
    """The data canary of environment ``name`` through the console at ``url``."""
    env = load_environment(root, name)
    tolerance = canary.settings(env)
    if tolerance is None:
        raise ValueError(f"{env.file}: verification.canary is not set; nothing to run")
    for i, feed in enumerate(tolerance.feeds):
        if not (root / feed).is_file():
            raise ValueError(f"{env.file}: verification.canary.feeds[{i}]: {feed} does not exist")
    if baseline_path:
        baseline: canary_run.Baseline | None = canary_run.baseline_file(baseline_path)
    else:
        baseline = canary_run.previous_baseline(root, name)
    console = canary_run.Console(url, token, timeout)
    outputs = canary_run.run_feeds(console, root, tolerance.feeds)
    checks = canary.compare(baseline.outputs if baseline else None, outputs, tolerance)
    pipeline = env.image("pipeline").short() if "pipeline" in env.services else "?"
    return canary.Report(
        name,
        baseline.describe()
        if baseline
        else "none (no succeeded release of this environment ran it)",
        f"pipeline {pipeline} through {url}",
        tolerance,
        outputs,
        checks,
    )


def _canary_done(name: str, report: canary.Report, path: Path | None) -> None:
    if path:
        # Written whatever the result: envctl record --evidence stores it either way.
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.as_evidence(), indent=2) + "\n", encoding="utf-8")
    add_summary(report.to_markdown())
    if not report.ok:
        sys.stderr.write(f"envctl.ci: the data canary of {name} disagrees with its baseline\n")


def _no_canary(name: str, env_file: str, path: Path | None) -> dict[str, Any]:
    evidence = canary.not_declared(name, env_file)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(evidence, indent=2) + "\n", encoding="utf-8")
    add_summary(f"➖ {evidence['detail']}")
    return evidence


def _canary(args: argparse.Namespace) -> int:
    env = load_environment(_root(args), args.env)
    if canary.settings(env) is None:
        evidence = _no_canary(args.env, env.file, args.report)
        set_output("ok", "true")
        _emit(args, evidence, str(evidence["detail"]))
        return EXIT_OK
    token = os.environ.get(args.token_env) or None
    report = _run_canary(_root(args), args.env, args.url, token, args.timeout, args.baseline)
    _canary_done(args.env, report, args.report)
    set_output("ok", "true" if report.ok else "false")
    _emit(args, report.as_evidence(), report.to_markdown())
    return EXIT_OK if report.ok else EXIT_FAIL


def parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument(
        "--repo", type=Path, default=None, help="repository root (default: from cwd)"
    )
    top = _Parser(
        prog="python -m envctl.ci",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, run: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(run=run)
        return p

    p = add(
        "environments",
        _environments,
        "cloud environments in promotion order (output: environments)",
    )
    p.add_argument("only", nargs="*", metavar="ENV", help="only these (checked to be cloud ones)")

    p = add(
        "changed", _changed, "cloud environments base..head changes (outputs: environments, any)"
    )
    p.add_argument("--base", required=True, help="base revision; empty or all zeros: everything")
    p.add_argument("--head", default="HEAD")

    p = add(
        "gate",
        _gate,
        "refuse to deploy ENV inside a freeze window unless the file is a release recorded "
        "succeeded there or carries an override in force (output: allowed)",
    )
    p.add_argument("env", metavar="ENV")
    p.add_argument(
        "--base",
        default="",
        help="revision the push started from (stack changes; default: the last deploy)",
    )
    p.add_argument("--head", default="HEAD")

    def smoke_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--token-env",
            default=TOKEN_VARIABLE,
            help=f"variable holding the Google ID token (default: {TOKEN_VARIABLE})",
        )
        p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for /readyz")
        p.add_argument("--interval", type=float, default=5.0, help="seconds between /readyz polls")
        p.add_argument("--report", type=Path, help="also write the JSON report here")

    p = add("smoke", _smoke, "smoke check of ENV's console at URL (output: ok)")
    p.add_argument("env", metavar="ENV")
    p.add_argument("--url", required=True, help="the console's https:// URL")
    p.add_argument("--no-expect", action="store_true", help="do not check the running commits")
    smoke_flags(p)

    p = add(
        "metrics-check",
        _metrics_check,
        "ENV's new revisions' error ratio and p95 from Cloud Monitoring (output: ok)",
    )
    p.add_argument("env", metavar="ENV")
    p.add_argument("--outputs", type=Path, help="tofu output -json of the stack (its revisions)")
    p.add_argument(
        "--revision", action="append", metavar="SERVICE=REVISION", help="a revision to judge"
    )
    p.add_argument(
        "--token-env",
        default=MONITORING_TOKEN_VARIABLE,
        help=f"variable holding the OAuth access token (default: {MONITORING_TOKEN_VARIABLE})",
    )
    p.add_argument("--api", default=metrics.API, help="Cloud Monitoring's base URL")
    p.add_argument("--wait", type=float, help="seconds to wait for requests (default: the window)")
    p.add_argument("--poll", type=float, default=metrics.POLL_SECONDS, help="seconds between polls")
    p.add_argument(
        "--evidence", type=Path, help="write the evidence JSON, kind metrics (envctl record)"
    )

    p = add("plan-summary", _plan_summary, "what a tofu show -json plan does (output: changes)")
    p.add_argument("plan", type=Path, metavar="PLAN_JSON")

    p = add("plan-check", _plan_check, "exit 1 when CURRENT is not the plan REVIEWED")
    p.add_argument("reviewed", type=Path, metavar="REVIEWED_JSON")
    p.add_argument("current", type=Path, metavar="CURRENT_JSON")

    p = add("pr-comment", _pr_comment, "the PR comment for ENV; --pr N posts or edits it")
    p.add_argument("env", metavar="ENV")
    p.add_argument("--diff", type=Path, help="output of envctl diff ENV --json")
    p.add_argument("--plan", type=Path, help="output of tofu show -json PLANFILE")
    p.add_argument("--plan-error", type=Path, help="log of a failed plan, shown instead")
    p.add_argument("--commit", required=True, help="the commit that was planned")
    p.add_argument("--run-url", help="link to the workflow run")
    p.add_argument("--pr", type=int, help="pull request number to comment on")

    p = add(
        "reviewed-run",
        _reviewed_run,
        "the plan run of the PR merged as SHA (outputs: run_id, pull_request)",
    )
    p.add_argument("--sha", required=True)
    p.add_argument("--workflow", default="plan.yml")
    p.add_argument(
        "--optional",
        action="store_true",
        help="no reviewed run is not an error (empty outputs: the fresh-plan approval path)",
    )

    p = add(
        "plan-verdict",
        _plan_verdict,
        "is CURRENT the plan reviewed for ENV? write a verdict (output: fresh)",
    )
    p.add_argument("env", metavar="ENV")
    p.add_argument("--current", type=Path, required=True, help="tofu show -json of the plan")
    p.add_argument("--reviewed", type=Path, required=True, help="where the reviewed plan's JSON is")
    p.add_argument("--reviewed-run", default="", help="the plan.yml run it came from (empty: none)")
    p.add_argument("--out", type=Path, help="write the verdict JSON here")

    p = add(
        "fresh-plans",
        _fresh_plans,
        "the fresh plans under DIR a person must approve (outputs: any, environments)",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--expect", help="JSON list of environments that must each have a verdict")

    p = add(
        "drift", _drift, "drift report for ENV from tofu plan -detailed-exitcode (output: drift)"
    )
    p.add_argument("env", metavar="ENV")
    p.add_argument("--exitcode", type=int, required=True, help="tofu plan's exit code: 0, 1 or 2")
    p.add_argument("--plan", type=Path, help="tofu show -json of the plan (needed for exit 2)")
    p.add_argument("--noise", type=Path, help="YAML list of known noise to ignore")
    p.add_argument("--sync", action="store_true", help="open, update or close ENV's drift issue")
    p.add_argument("--run-url", help="link to the workflow run")

    p = add("rollout-steps", _rollout_steps, "ENV's gradual rollout steps (output: rollout)")
    p.add_argument("env", metavar="ENV")

    p = add(
        "rollout", _rollout, "apply ENV's rollout steps with a smoke check after each (output: ok)"
    )
    p.add_argument("env", metavar="ENV")
    p.add_argument("--stack", type=Path, required=True, help="the root stack, initialised")
    p.add_argument("--vars", type=Path, required=True, help="envctl render ENV output")
    p.add_argument("--console-url", required=True, help="the console's URL (from the stack)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("RUNNER_TEMP", ".")),
        help="where step variable files go",
    )
    p.add_argument(
        "--canary-report",
        type=Path,
        help="run ENV's data canary at step 0 (before traffic) and write its evidence here",
    )
    smoke_flags(p)

    p = add("service-url", _service_url, "a service's URL from tofu output -json (output: url)")
    p.add_argument("--outputs", type=Path, required=True)
    p.add_argument("--service", required=True)

    p = add(
        "publish",
        _publish,
        "push built images to ENV's registry once per tag (outputs: SERVICE_digest, commit)",
    )
    p.add_argument("--env", required=True, help="the environment whose registry receives builds")
    p.add_argument("--manifest", type=Path, default=Path(".cache/images.json"))
    p.add_argument("--service", action="append", help="only this service (repeatable)")

    p = add("registry", _registry, "ENV's image registry (outputs: registry, host)")
    p.add_argument("env", metavar="ENV")

    p = add("copy-images", _copy_images, "copy ENV's images into its registry by digest")
    p.add_argument("env", metavar="ENV")

    p = add(
        "failed",
        _failed,
        "environments whose newest deploy record at COMMIT says failed "
        "(outputs: environments, environment)",
    )
    p.add_argument("--commit", default="HEAD", help="the deployed main commit")

    p = add(
        "smoke-failures",
        _smoke_failures,
        "environments named in smoke reports under DIR (outputs: environments, environment)",
    )
    p.add_argument("dir", type=Path, metavar="DIR")

    p = add("lock", _lock, "claim ENV for pull request N; exit 1 if another holds it (held)")
    p.add_argument("env", metavar="ENV")
    p.add_argument("--pr", type=int, required=True, help="the pull request being planned")
    p.add_argument("--commit", required=True, help="the commit being planned")
    p.add_argument("--run-url", help="link to the workflow run")
    p.add_argument("--bot", default=lock.DEFAULT_BOT, help="login whose comments are claims")
    p.add_argument(
        "--settle",
        type=float,
        default=lock.SETTLE_SECONDS,
        help="seconds between the two reads of the claims (GitHub's listing lag)",
    )

    p = add("lock-release", _lock_release, "release PR N's locks it no longer needs (released)")
    p.add_argument("--pr", type=int, required=True)
    p.add_argument("--keep", required=True, help="JSON list: environments the PR still changes")
    p.add_argument("--bot", default=lock.DEFAULT_BOT, help="login whose comments are claims")

    p = add("record-tag", _record_tag, "ENV's newest deploy record on REV (outputs: tag, result)")
    p.add_argument("env", metavar="ENV")
    p.add_argument("--rev", default="HEAD", help="the deployed commit (default: HEAD)")

    p = add(
        "deployment",
        _deployment,
        "mirror ENV's deploy record TAG to GitHub Deployments (output: deployment_id)",
    )
    p.add_argument("env", metavar="ENV")
    p.add_argument("--result", required=True, help="the record's result: succeeded or failed")
    p.add_argument("--record-tag", required=True, help="the record: deploy/ENV/<time>")
    p.add_argument("--run-url", help="link to the workflow run (the status's log URL)")

    p = add(
        "canary",
        _canary,
        "run ENV's reference feeds through the console at URL and compare (output: ok)",
    )
    p.add_argument("env", metavar="ENV")
    p.add_argument("--url", required=True, help="the console URL reaching the new pipeline")
    p.add_argument(
        "--baseline", type=Path, help="canary evidence to compare with (default: the record)"
    )
    p.add_argument("--report", type=Path, help="write the JSON evidence here")
    p.add_argument(
        "--token-env",
        default=TOKEN_VARIABLE,
        help=f"variable holding the Google ID token (default: {TOKEN_VARIABLE})",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run: Handler = args.run
    try:
        return run(args)
    except EXPECTED as exc:
        message = exc.lines() if isinstance(exc, EnvctlError) else [str(exc)]
        for line in message:
            sys.stderr.write(f"envctl.ci: {line}\n")
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
