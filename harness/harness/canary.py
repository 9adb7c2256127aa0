"""``python -m harness.canary OLD_SHA NEW_SHA``: the data canary between two pipeline images.

Both pipeline images (``gtfs-pipeline:<sha>``; built from a temporary worktree at that
commit when absent) run side by side as containers (host network, loopback, ``$PORT``).
Every reference feed of the environment's ``verification.canary`` (``--env``, default
``local``) goes through each over gRPC; the old image's outputs are the baseline, and
``envctl.canary.compare`` holds the new image's against them on the same invariants the
deploy workflow checks. Prints the markdown report, writes the JSON evidence with
``--report``, exits 1 when they disagree (0 when they agree, 2 on bad usage).

``--old-image`` / ``--new-image`` take an image reference instead of a commit, for a
variant that is not a commit (the test's pipeline whose step drops stop_times rows).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import grpc

from envctl import gitrepo
from envctl.canary import (
    CanaryError,
    FeedOutput,
    Report,
    Settings,
    StepOutcome,
    compare,
    settings,
    sha256_file,
    summarize,
)
from envctl.errors import EnvctlError
from envctl.load import load_environment
from harness import containers, images
from harness.engine import ensure_engine
from harness.grpc_client import download, run_requests
from harness.tree import REPO_ROOT, is_dirty
from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc

RUN_TIMEOUT_S = 300.0
_RUN_STATUS = {pb.RUN_STATUS_COMPLETED: "completed", pb.RUN_STATUS_FAILED: "failed"}
_STEP_STATUS = {
    pb.STEP_STATUS_SUCCESS: "success",
    pb.STEP_STATUS_FAILED: "failed",
    pb.STEP_STATUS_SKIPPED: "skipped",
}


def run_feed(addr: str, feed: Path) -> FeedOutput:
    """One reference feed through the pipeline at ``addr``, summarised."""
    digest = sha256_file(feed)
    with grpc.insecure_channel(addr) as channel:
        stub = pipeline_pb2_grpc.PipelineServiceStub(channel)
        try:
            run = stub.RunPipeline(
                run_requests(feed, label=f"canary {feed.name}"), timeout=RUN_TIMEOUT_S
            )
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                # The candidate refused a feed: a disagreement, not a broken harness.
                return summarize(feed.name, digest, "refused", str(exc.details()), [], None)
            raise CanaryError(
                f"RunPipeline of {feed.name} at {addr}: {code.name}: {exc.details()}"
            ) from None
        steps = [
            StepOutcome(r.step_name, _STEP_STATUS.get(r.status, "failed"), r.error)
            for r in run.step_results
        ]
        status = _RUN_STATUS.get(run.status, "failed")
        output = (
            download(stub, run.run_id) if status == "completed" and run.output_available else None
        )
    return summarize(feed.name, digest, status, run.error, steps, output)


def run_feeds(addr: str, feeds: Sequence[Path]) -> list[FeedOutput]:
    return [run_feed(addr, feed) for feed in feeds]


def compare_images(
    old_image: str, new_image: str, canary: Settings, environment: str = "local"
) -> Report:
    """Start both pipelines, run every feed through each, compare new against old."""
    feeds = [REPO_ROOT / f for f in canary.feeds]
    for feed in feeds:
        if not feed.is_file():
            raise CanaryError(f"{feed}: no such reference feed (verification.canary.feeds)")
    stack = containers.new_stack_id()
    boxes: list[containers.ServiceContainer] = []
    try:
        for image in (old_image, new_image):
            boxes.append(containers.start_pipeline(image, stack))
        old = run_feeds(boxes[0].addr, feeds)
        new = run_feeds(boxes[1].addr, feeds)
    finally:
        for box in boxes:
            box.remove()
    checks = compare({o.feed: o for o in old}, new, canary)
    return Report(environment, f"image {old_image}", f"image {new_image}", canary, new, checks)


# --- images at a commit --------------------------------------------------------------------


def _commit(rev: str) -> str:
    try:
        return gitrepo.git(REPO_ROOT, "rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    except Exception:
        raise CanaryError(f"{rev!r} is not a commit of {REPO_ROOT}") from None


def pipeline_image(rev: str) -> str:
    """``gtfs-pipeline:<sha>`` for commit ``rev``: the existing image, or one built from a
    temporary worktree at that commit with that commit's own harness (its Dockerfile,
    lock and pipelines are what it ships)."""
    sha = _commit(rev)
    ref = f"{images.NAMES['pipeline']}:{sha}"
    if (
        subprocess.run(
            ["docker", "image", "inspect", ref], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return ref
    if sha == gitrepo.head(REPO_ROOT) and not is_dirty():
        return images.build(services=("pipeline",)).ref("pipeline")
    parent = REPO_ROOT / ".cache" / "canary"
    parent.mkdir(parents=True, exist_ok=True)
    tree = Path(tempfile.mkdtemp(prefix=f"{sha[:12]}-", dir=parent))
    gitrepo.git(REPO_ROOT, "worktree", "add", "--detach", "--force", str(tree), sha)
    try:
        path = os.pathsep.join(str(tree / p) for p in ("harness", "envctl", "testkit"))
        done = subprocess.run(
            [sys.executable, "-m", "harness.images", "build", "--service", "pipeline"],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise CanaryError(f"building the pipeline at {sha[:12]} failed:\n{done.stderr[-3000:]}")
    finally:
        gitrepo.git(REPO_ROOT, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tree, ignore_errors=True)
    return ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.canary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("old", metavar="OLD_SHA", help="the baseline's commit (any revision)")
    parser.add_argument("new", metavar="NEW_SHA", help="the candidate's commit (any revision)")
    parser.add_argument("--env", default="local", help="whose verification.canary to use")
    parser.add_argument("--old-image", help="use this pipeline image as the baseline")
    parser.add_argument("--new-image", help="use this pipeline image as the candidate")
    parser.add_argument("--report", type=Path, help="write the JSON evidence here")
    parser.add_argument("--json", action="store_true", help="print the JSON evidence")
    args = parser.parse_args(argv)
    try:
        env = load_environment(REPO_ROOT, args.env)
        canary = settings(env)
        if canary is None:
            raise CanaryError(f"{env.file}: verification.canary is not set; nothing to run")
        ensure_engine()
        old = args.old_image or pipeline_image(args.old)
        new = args.new_image or pipeline_image(args.new)
        report = compare_images(old, new, canary, env.name)
    except (CanaryError, EnvctlError, containers.ContainerFailed) as exc:
        sys.stderr.write(f"harness.canary: {exc}\n")
        return 1
    evidence = report.as_evidence()
    if args.report:
        args.report.write_text(json.dumps(evidence, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps(evidence, indent=2) + "\n" if args.json else report.to_markdown())
    if not report.ok:
        sys.stderr.write(f"harness.canary: {new} disagrees with {old}\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
