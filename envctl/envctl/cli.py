"""envctl: the one tool that reads and writes environments/*.yaml.

    envctl validate [ENV...]          schema + policy (+ the deploy record) for the files
    envctl render ENV [--backend]     root-stack variables as JSON (or the gcs backend config)
    envctl diff ENV [--base REV]      what the working-tree change does, in words
    envctl set-image ENV SERVICE=SHA@sha256:DIGEST [SERVICE=...]   one commit
    envctl set-image ENV SERVICE --commit SHA [--digest sha256:...]
    envctl promote FROM TO [--release ID] [--allow-rolled-back --reason TEXT]
    envctl rollback ENV [--to RELEASE]
    envctl record ENV --result succeeded|failed [--run-url URL] [--evidence FILE ...]
    envctl history ENV                desired (merged) and observed (deployed) side by side

``--json`` (before or after the command) prints machine-readable output on stdout.
Exit status: 0 success, 1 failure (one line per problem on stderr: file, field,
message; also a write the machine refused), 2 bad usage, 3 rollback found nothing to
roll back to, 70 a bug in envctl.
``$ENVCTL_NOW`` (RFC 3339) replaces the clock (freezes, overrides, soak, record times).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from envctl import gitrepo
from envctl.diff import describe, to_markdown
from envctl.errors import EnvctlError
from envctl.freeze import now_utc
from envctl.history import Ledger, short
from envctl.load import (
    env_file,
    find_repo_root,
    list_environments,
    load_environment,
    parse_environment,
)
from envctl.model import Image
from envctl.record import record
from envctl.release import NothingToRollBackTo, Outcome, promote, rollback, set_images
from envctl.render import backend_config, render, to_json
from envctl.upstream import problems as upstream_problems

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOTHING = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's usage error, as one clear line
        self.exit(EXIT_USAGE, f"envctl: {message} (see: envctl --help)\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    common.add_argument(
        "--repo",
        type=Path,
        default=argparse.SUPPRESS,
        help="repository root (default: found from cwd)",
    )
    parser = _Parser(
        prog="envctl",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", parents=[common], help="check files against schema and policy")
    p.add_argument("envs", nargs="*", metavar="ENV")
    p.set_defaults(run=_validate)

    p = sub.add_parser("render", parents=[common], help="the root stack's variables as JSON")
    p.add_argument("env", metavar="ENV")
    p.add_argument("--backend", action="store_true", help="print the gcs backend config instead")
    p.set_defaults(run=_render)

    p = sub.add_parser("diff", parents=[common], help="what the change to ENV does, in words")
    p.add_argument("env", metavar="ENV")
    p.add_argument("--base", default="HEAD", help="git revision to compare with (default: HEAD)")
    p.set_defaults(run=_diff)

    p = sub.add_parser("set-image", parents=[common], help="point services at built images")
    p.add_argument("env", metavar="ENV")
    p.add_argument(
        "images",
        nargs="+",
        metavar="SERVICE=SHA[@sha256:DIGEST]",
        help="each service and its image, all in one commit (or one SERVICE with --commit)",
    )
    p.add_argument("--commit", help="with one SERVICE: the full 40-hex commit SHA")
    p.add_argument("--digest", help="with one SERVICE and --commit: the registry digest")
    p.set_defaults(run=_set_image)

    p = sub.add_parser("promote", parents=[common], help="copy FROM's verified release into TO")
    p.add_argument("source", metavar="FROM")
    p.add_argument("target", metavar="TO")
    p.add_argument(
        "--release",
        "--commit",
        dest="release",
        help="this release of FROM (id or full main commit SHA; default: newest verified)",
    )
    p.add_argument(
        "--allow-rolled-back",
        action="store_true",
        help="ship images TO rolled back (needs --reason, which goes into the commit)",
    )
    p.add_argument("--reason", help="why, for --allow-rolled-back")
    p.set_defaults(run=_promote)

    p = sub.add_parser("rollback", parents=[common], help="restore the last known good release")
    p.add_argument("env", metavar="ENV")
    p.add_argument("--to", help="release id (or full main commit SHA) recorded succeeded in ENV")
    p.set_defaults(run=_rollback)

    p = sub.add_parser("record", parents=[common], help="record ENV's deploy at HEAD (a tag)")
    p.add_argument("env", metavar="ENV")
    # Checked by envctl.record (not argparse choices): one clear line, exit 1.
    p.add_argument("--result", required=True, metavar="succeeded|failed")
    p.add_argument("--run-url", help="the workflow run that deployed it")
    p.add_argument(
        "--evidence",
        action="append",
        type=Path,
        default=[],
        metavar="FILE.json",
        help='verification report {"kind": ...} (repeatable)',
    )
    p.add_argument(
        "--evidence-dir",
        type=Path,
        help="also every *.json in this folder (missing: none), in name order",
    )
    p.set_defaults(run=_record)

    p = sub.add_parser("history", parents=[common], help="ENV's releases and deploys, newest first")
    p.add_argument("env", metavar="ENV")
    p.set_defaults(run=_history)
    return parser


# Each command returns (exit status, JSON-able result, text for stdout).
Result = tuple[int, Any, str]


def _validate(root: Path, args: argparse.Namespace) -> Result:
    names = args.envs or list_environments(root)
    report: dict[str, Any] = {}
    failures: list[EnvctlError] = []
    for name in names:
        try:
            env = load_environment(root, name)
            found = upstream_problems(env)
            if found:
                raise EnvctlError.of(found)
            report[name] = {"ok": True, "problems": []}
        except EnvctlError as exc:
            failures.append(exc)
            problems = [p.as_dict() for p in exc.problems] or [{"message": exc.lines()[0]}]
            report[name] = {"ok": False, "problems": problems}
    for failure in failures:
        _stderr(failure.lines())
    ok = not failures
    text = "".join(f"{env_file(n)}: ok\n" for n, r in report.items() if r["ok"])
    return (EXIT_OK if ok else EXIT_FAIL), {"ok": ok, "environments": report}, text


def _render(root: Path, args: argparse.Namespace) -> Result:
    env = load_environment(root, args.env)
    if args.backend:
        if not env.is_cloud:
            raise EnvctlError(f"{env.file}: platform: {env.name} has no OpenTofu state (docker)")
        config = backend_config(env)
        return EXIT_OK, config, "".join(f'{k} = "{v}"\n' for k, v in sorted(config.items()))
    rendered = render(env)
    return EXIT_OK, rendered, to_json(rendered)


def _diff(root: Path, args: argparse.Namespace) -> Result:
    after = load_environment(root, args.env)
    try:
        gitrepo.git(root, "rev-parse", "--verify", "--quiet", f"{args.base}^{{commit}}")
    except EnvctlError:
        raise EnvctlError(f"--base {args.base!r} is not a commit of this repository") from None
    old_text = gitrepo.show(root, args.base, after.file)
    before = None
    if old_text is not None:
        before = parse_environment(
            root, args.env, old_text, check=False, file=f"{args.base}:{after.file}"
        ).data
    changes = describe(before, after.data)
    result = {"environment": args.env, "base": args.base, "changes": [c.as_dict() for c in changes]}
    return EXIT_OK, result, to_markdown(args.env, args.base, changes)


def _set_image(root: Path, args: argparse.Namespace) -> Result:
    images = _image_args(args)
    return _outcome(set_images(root, args.env, images, now_utc()))


def _image_args(args: argparse.Namespace) -> dict[str, Image]:
    items: list[str] = args.images
    if len(items) == 1 and "=" not in items[0]:  # the one-service form
        if not args.commit:
            raise EnvctlError(
                f"set-image {args.env} {items[0]}: give --commit SHA, "
                f"or {items[0]}=SHA@sha256:DIGEST"
            )
        return {items[0]: Image(args.commit, args.digest)}
    if args.commit or args.digest:
        raise EnvctlError(
            "--commit/--digest go with one SERVICE; with SERVICE=SHA@DIGEST leave them out"
        )
    images: dict[str, Image] = {}
    for item in items:
        service, sep, ref = item.partition("=")
        commit, at, digest = ref.partition("@")
        if not sep or not service or not commit or (at and not digest):
            raise EnvctlError(
                f"{item!r}: must be SERVICE=SHA@sha256:DIGEST (or SERVICE=SHA on docker)"
            )
        if service in images:
            raise EnvctlError(f"{item!r}: {service} is named twice")
        images[service] = Image(commit, digest or None)
    return images


def _promote(root: Path, args: argparse.Namespace) -> Result:
    outcome = promote(
        root,
        args.source,
        args.target,
        now_utc(),
        args.release,
        allow_rolled_back=args.allow_rolled_back,
        reason=args.reason,
    )
    return _outcome(outcome)


def _rollback(root: Path, args: argparse.Namespace) -> Result:
    return _outcome(rollback(root, args.env, args.to))


def _record(root: Path, args: argparse.Namespace) -> Result:
    evidence = list(args.evidence)
    if args.evidence_dir is not None and args.evidence_dir.is_dir():
        evidence += sorted(args.evidence_dir.glob("*.json"))
    made = record(root, args.env, args.result, now_utc(), args.run_url, evidence)
    return EXIT_OK, made.as_dict() | {"tag": made.tag}, f"{made.tag}\n"


def _outcome(outcome: Outcome) -> Result:
    if outcome.changed:
        text = f"{outcome.commit}: {outcome.message}\n"
    else:
        text = f"{outcome.message}; nothing to commit\n"
    return EXIT_OK, outcome.as_dict(), text


def _history(root: Path, args: argparse.Namespace) -> Result:
    load_environment(root, args.env)  # a clear error for an unknown or broken environment
    ledger = Ledger(root, args.env)
    lines = []
    for status in ledger.statuses:
        r, row = status.release, status.as_dict()
        lines.append(f"{short(r.id)}  merged {r.merged_at}  {r.author}  {r.subject}")
        observed = status.observed()
        if row["verified"]:
            observed += f", verified: {', '.join(row['verified'])}"
        if status.rolled_back_by:
            observed += f", rolled back by {short(status.rolled_back_by)}"
        if status.restores:
            observed += f", restores {short(status.restores)}"
        lines.append(f"    deployed: {observed}")
        if row["run_url"]:
            lines.append(f"    run: {row['run_url']}")
        for name, image in sorted(r.images.items()):
            lines.append(f"    {name:<12} {image.commit}  {image.digest or '-'}")
    text = "\n".join(lines) + "\n" if lines else f"no releases of {args.env} yet\n"
    value = {
        "environment": args.env,
        "releases": [s.as_dict() for s in ledger.statuses],
        "records": [rec.as_dict() | {"tag": rec.tag} for rec in ledger.records],
    }
    return EXIT_OK, value, text


def _stderr(lines: Sequence[str]) -> None:
    for line in lines:
        sys.stderr.write(f"{line}\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    as_json = getattr(args, "json", False)
    run: Callable[[Path, argparse.Namespace], Result] = args.run
    try:
        root = find_repo_root(getattr(args, "repo", None))
        status, result, text = run(root, args)
    except EnvctlError as exc:
        _stderr(exc.lines())
        status = EXIT_NOTHING if isinstance(exc, NothingToRollBackTo) else EXIT_FAIL
        if as_json:
            errors = [p.as_dict() for p in exc.problems] or [{"message": exc.lines()[0]}]
            sys.stdout.write(json.dumps({"ok": False, "errors": errors}, indent=2) + "\n")
        return status
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # the machine, not envctl: a disk, a permission, a device
        where = f"{exc.filename}: " if exc.filename else ""
        _stderr([f"envctl: {where}{exc.strerror or type(exc).__name__}"])
        return EXIT_FAIL
    except Exception as exc:  # a bug in envctl: still one line, traceback on request
        if os.environ.get("ENVCTL_DEBUG"):
            raise
        _stderr(
            [f"envctl: internal error: {type(exc).__name__}: {exc} (ENVCTL_DEBUG=1 shows more)"]
        )
        return 70
    if as_json:
        sys.stdout.write(to_json(result))
    elif text:
        sys.stdout.write(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
