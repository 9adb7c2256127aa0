"""A small GitHub made of real git repositories, for the release-lifecycle scenarios.

``World`` holds a bare ``origin`` (the GitHub repository) seeded with this checkout's
``environments/`` and a stand-in ``modules/``. Actors work in their own clones, the
way the workflows do:

* ``pull_request(branch, change)``: a person's or a bot's branch, pushed to origin;
* ``merge(branch)``: GitHub's merge button with the world's merge method: ``squash``
  (one commit, the PR title as its whole message, as the issue's title-only squash),
  ``merge`` (a merge commit with the branch's commits behind it) or ``rebase`` (each
  commit of the branch replayed on main, new SHAs);
* ``deploy(results)``: deploy.yml after a push: ``python -m envctl.ci changed`` for the
  environments, then per environment the gate and, when it lets the deploy through,
  ``envctl record ENV --result R`` (the apply result is the scenario's), the tag pushed;
  a failed record runs the automatic rollback (``envctl rollback``) as its own PR.

Every command is the entry point a workflow calls (``envctl.cli.main``,
``envctl.ci.__main__.main``), run in-process for speed, each with ``--repo`` of the
actor's clone. The clock is ``$ENVCTL_NOW``, moved on by ``tick``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envctl import records
from envctl.ci.__main__ import main as ci_main
from envctl.cli import main as envctl_main
from envctl.yamlio import dump, parse

REPO_ROOT = Path(__file__).resolve().parents[2]
METHODS = ("squash", "merge", "rebase")
START = dt.datetime(2026, 6, 10, 10, 0, tzinfo=dt.UTC)  # a Wednesday, no window open


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def digest(service: str, commit: str) -> str:
    """The registry digest an image of ``service`` built at ``commit`` would have."""
    return "sha256:" + hashlib.sha256(f"{service}@{commit}".encode()).hexdigest()


@dataclass
class Run:
    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def _call(main: Callable[[list[str]], int], argv: list[str]) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse usage errors
            status = int(exc.code or 0)
    return Run(status, out.getvalue(), err.getvalue())


@dataclass
class Clone:
    path: Path

    def envctl(self, *argv: str) -> Run:
        return _call(envctl_main, ["--repo", str(self.path), *argv])

    def ci(self, command: str, *argv: str) -> Run:
        return _call(ci_main, [command, "--repo", str(self.path), *argv])

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def edit(self, name: str, change: Callable[[Any], None]) -> None:
        """Edit environments/NAME.yaml round-trip (comments kept), uncommitted."""
        path = self.path / "environments" / f"{name}.yaml"
        doc = parse(path.read_text(encoding="utf-8"), str(path))
        change(doc)
        path.write_text(dump(doc), encoding="utf-8")

    def commit_all(self, message: str) -> str:
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        return self.head()


@dataclass
class Deploy:
    environment: str
    commit: str
    gate: Run
    record: Run | None = None
    rollback: Run | None = None  # the automatic rollback after a failed record

    @property
    def refused(self) -> bool:
        return self.gate.status != 0


@dataclass
class World:
    root: Path
    method: str
    now: dt.datetime = START
    _serial: int = 0
    deploys: list[Deploy] = field(default_factory=list)
    pending_rollback: str | None = None  # the branch of the open automatic-rollback PR

    # --- set-up -----------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path, method: str) -> World:
        world = cls(root, method)
        seed = world.root / "seed"
        shutil.copytree(REPO_ROOT / "environments", seed / "environments")
        (seed / "modules" / "stack").mkdir(parents=True)
        (seed / "modules" / "stack" / "main.tf").write_text("# the root stack\n")
        (seed / "services").mkdir()
        (seed / "services" / "VERSION").write_text("0\n")
        git(world.root, "init", "--quiet", "--bare", "--initial-branch=main", "origin.git")
        git(seed, "init", "--quiet", "--initial-branch=main")
        world._identity(seed)
        git(seed, "add", "--all")
        git(seed, "commit", "--quiet", "-m", "seed: environments as in the checkout")
        git(seed, "push", "--quiet", str(world.origin), "main")
        world._set_clock()
        return world

    @property
    def origin(self) -> Path:
        return self.root / "origin.git"

    def clone(self, name: str, *, tags: bool = True) -> Clone:
        """A fresh clone of origin (as actions/checkout with fetch-depth: 0 makes)."""
        self._serial += 1
        path = self.root / f"{self._serial:03d}-{name}"
        git(
            self.root,
            "clone",
            "--quiet",
            *([] if tags else ["--no-tags"]),
            str(self.origin),
            str(path),
        )
        self._identity(path)
        return Clone(path)

    @staticmethod
    def _identity(path: Path) -> None:
        git(path, "config", "user.name", "gtfs-release[bot]")
        git(path, "config", "user.email", "gtfs-release[bot]@users.noreply.github.com")
        git(path, "config", "commit.gpgsign", "false")
        git(path, "config", "tag.gpgsign", "false")
        git(path, "config", "core.hooksPath", ".git/hooks")

    # --- the clock ----------------------------------------------------------------------

    def tick(self, minutes: float = 1) -> None:
        self.now += dt.timedelta(minutes=minutes)
        self._set_clock()

    def at(self, moment: dt.datetime) -> None:
        self.now = moment
        self._set_clock()

    def _set_clock(self) -> None:
        os.environ["ENVCTL_NOW"] = self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    # --- GitHub ---------------------------------------------------------------------------

    def main_head(self) -> str:
        return git(self.origin, "rev-parse", "main").strip()

    def pull_request(self, branch: str, change: Callable[[Clone], None]) -> str:
        """``change`` runs in a fresh clone on a new branch; the branch is pushed."""
        work = self.clone(f"pr-{branch.replace('/', '-')}")
        work.git("checkout", "--quiet", "-b", branch)
        change(work)
        work.git("push", "--quiet", "origin", branch)
        return branch

    def merge(self, branch: str, title: str | None = None) -> tuple[str, str]:
        """Merge ``branch`` into main the way GitHub does for the world's method;
        returns (before, after) of main, as the push event carries them."""
        hub = self.clone("github")
        before = hub.head()
        hub.git("fetch", "--quiet", "origin", branch)
        title = title or f"Merge {branch}"
        if self.method == "squash":
            hub.git("merge", "--quiet", "--squash", "FETCH_HEAD")
            hub.git("commit", "--quiet", "-m", f"{title} (#{self._serial})")
        elif self.method == "merge":
            hub.git("merge", "--quiet", "--no-ff", "FETCH_HEAD", "-m",
                    f"Merge pull request #{self._serial} from {branch}\n\n{title}")  # fmt: skip
        else:
            hub.git("checkout", "--quiet", "-B", "rebasing", "FETCH_HEAD")
            hub.git("rebase", "--quiet", "--force-rebase", "main")
            hub.git("checkout", "--quiet", "main")
            hub.git("merge", "--quiet", "--ff-only", "rebasing")
        hub.git("push", "--quiet", "origin", "main")
        return before, hub.head()

    def ship(self, branch: str, change: Callable[[Clone], None], **results: str) -> list[Deploy]:
        """A PR, merged, deployed: ``results`` gives each environment's apply result."""
        self.pull_request(branch, change)
        before, after = self.merge(branch)
        return self.deploy(before, after, **results)

    # --- deploy.yml -------------------------------------------------------------------------

    def deploy(self, before: str, after: str, **results: str) -> list[Deploy]:
        """What deploy.yml does for the push before..after."""
        runner = self.clone("deploy")
        runner.git("checkout", "--quiet", after)
        changed = runner.ci("changed", "--base", before, "--json")
        assert changed.status == 0, changed.err
        done = []
        for name in changed.json():
            done.append(self._deploy_one(runner, name, before, results.get(name, "succeeded")))
            if done[-1].refused or results.get(name, "succeeded") == "failed":
                break  # fail-fast: the environments behind it wait
        return done

    def _deploy_one(self, runner: Clone, name: str, before: str, result: str) -> Deploy:
        self.tick()
        gate = runner.ci("gate", name, "--base", before)
        deploy = Deploy(name, runner.head(), gate)
        self.deploys.append(deploy)
        if deploy.refused:
            return deploy
        deploy.record = self.record(runner, name, result)
        if result == "failed":
            deploy.rollback = self.auto_rollback(name)
        return deploy

    def record(self, runner: Clone, name: str, result: str, *evidence: Path) -> Run:
        args = [
            "record",
            name,
            "--result",
            result,
            "--run-url",
            f"https://ci.example/{self._serial}",
        ]
        for path in evidence:
            args += ["--evidence", str(path)]
        made = runner.envctl(*args)
        assert made.status == 0, made.err
        runner.git("push", "--quiet", "origin", f"refs/tags/{made.out.strip()}")
        return made

    def auto_rollback(self, name: str) -> Run:
        """deploy.yml's rollback job: envctl rollback ENV on a branch, PR opened (the
        scenario merges it, or not)."""
        bot = self.clone("auto-rollback")
        bot.git("checkout", "--quiet", "-b", f"envctl/rollback-{name}-{self._serial}")
        rolled = bot.envctl("rollback", name)
        if rolled.status == 0:
            bot.git("push", "--quiet", "origin", "HEAD")
            self.pending_rollback = bot.git("rev-parse", "--abbrev-ref", "HEAD").strip()
        return rolled

    def merge_rollback(self, **results: str) -> list[Deploy]:
        assert self.pending_rollback, "no rollback PR is open"
        branch, self.pending_rollback = self.pending_rollback, None
        before, after = self.merge(branch, title=f"roll back ({branch})")
        return self.deploy(before, after, **results)

    # --- reading --------------------------------------------------------------------------

    def history(self, name: str) -> list[dict[str, Any]]:
        run = self.clone("reader").envctl("history", name, "--json")
        assert run.status == 0, run.err
        releases: list[dict[str, Any]] = run.json()["releases"]
        return releases


# --- changes a scenario makes ----------------------------------------------------------


def build(commit: str, **only: str) -> Callable[[Clone], None]:
    """build.yml's PR: one set-image call for every service (``only`` overrides a
    service's build commit)."""

    def change(work: Clone) -> None:
        items = [
            f"{svc}={c}@{digest(svc, c)}"
            for svc in ("pipeline", "console")
            for c in [only.get(svc, commit)]
        ]
        made = work.envctl("set-image", "dev", *items)
        assert made.status == 0, made.err

    return change


def old_build(commit: str) -> Callable[[Clone], None]:
    """The build.yml of before: one set-image commit per service (two in one PR)."""

    def change(work: Clone) -> None:
        for svc in ("pipeline", "console"):
            made = work.envctl(
                "set-image", "dev", svc, "--commit", commit, "--digest", digest(svc, commit)
            )
            assert made.status == 0, made.err

    return change


def promote(source: str, target: str, *extra: str) -> Callable[[Clone], None]:
    def change(work: Clone) -> None:
        made = work.envctl("promote", source, target, *extra)
        assert made.status == 0, made.err

    return change


def edit(name: str, message: str, how: Callable[[Any], None]) -> Callable[[Clone], None]:
    def change(work: Clone) -> None:
        work.edit(name, how)
        work.commit_all(message)

    return change


def built_commit(world: World, label: str) -> str:
    """A real main commit to build images from (a change under services/)."""

    def change(work: Clone) -> None:
        (work.path / "services" / "VERSION").write_text(f"{label}\n")
        work.commit_all(f"services: {label}")

    world.pull_request(f"code-{label}", change)
    before, after = world.merge(f"code-{label}")
    world.deploy(before, after)  # nothing under environments/ or modules/: no deploy
    return world.main_head()


@contextmanager
def fresh_warnings() -> Iterator[None]:
    """Records warn once per process; each scenario sees its own warnings."""
    records._warned.clear()
    yield
    records._warned.clear()
